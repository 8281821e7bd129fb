"""Counts as they may leave the analyst role: the small-cell rule for what Python renders (the
weekly email, the quality report, any dashboard).

The rule is the warehouse's own, in SQL (`disclosure.hidden_cells`, `disclosure.gives_away`,
`disclosure.rate_hidden`: warehouse/migrations/0008_small_cells.sql), which the marts dbt builds
call too, so it is written once. CMS's cell-size policy: no count of 1 to 10 is shown, nor a
figure one could be derived from. This module gathers a page's figures and the sums that tie them
(a source's received rows are its loaded and quarantined ones; a rule's quarantined records are
its records by status), and asks the rule again until no sum gives a hidden figure away: a sum
whose hidden members the rule cannot cover with another hides its total too, and a hidden total
whose members are all shown (their sum would give it back) hides one of them.

    figures = Figures()
    figures.count(("ehr", "received"), 120)
    ...
    figures.sum([("ehr", "received")], [("ehr", "loaded"), ("ehr", "quarantined")])
    shown = figures.shown(conn)            # key -> the count, or None where hidden
    rate_hidden(conn, readmitted, stays)   # a rate's numerator, denominator or difference small

One mark for every hidden figure, whatever hid it (`HIDDEN`): a reader cannot tell a small count
from the larger one hidden beside it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from functools import cache

import psycopg
import yaml

from common import settings

HIDDEN = "hidden"
LEGEND = (
    "hidden: a count of 1 to 10, or a figure that would give one away"
    " (CMS cell-size policy: docs/analyst_guide.md, Small cells)"
)


@cache
def min_cell_size() -> int:
    """The smallest count shown: dbt's var min_cell_size, the marts' setting too."""
    project = yaml.safe_load((settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    return int(project["vars"]["min_cell_size"])


@dataclass(frozen=True)
class Sum:
    total: tuple[Hashable, ...]  # the figures whose sum is the total: known while all are shown
    members: tuple[Hashable, ...]


class Figures:
    """The counts of a page and the sums that tie them."""

    def __init__(self) -> None:
        self.counts: dict[Hashable, int] = {}
        self.sums: list[Sum] = []

    def count(self, key: Hashable, value: int) -> None:
        self.counts[key] = int(value)

    def sum(self, total: Iterable[Hashable], members: Iterable[Hashable]) -> None:
        """`members` add up to what the figures `total` add up to: one figure, several a reader
        adds up, or none (a total known from elsewhere, which hiding cannot take back)."""
        self.sums.append(Sum(tuple(total), tuple(members)))

    def shown(self, conn: psycopg.Connection) -> dict[Hashable, int | None]:
        min_cell = min_cell_size()
        hidden = self._hidden(conn, self.counts, set(), False, min_cell)
        changed = True
        while changed:
            changed = False
            for group in self.sums:
                total_known = not any(t in hidden for t in group.total)
                newly = self._hidden(conn, group.members, hidden, total_known, min_cell) - hidden
                if newly:
                    hidden |= newly
                    changed = True
                if total_known and group.total and self._gives_away(conn, group, hidden, min_cell):
                    hidden |= set(group.total)  # no member left to hide beside them
                    changed = True
                if not total_known and not any(m in hidden for m in group.members):
                    complement = self._complement(conn, group.members, hidden)
                    if complement is not None:  # the members would add up to the hidden total
                        hidden.add(complement)
                        changed = True
        return {key: None if key in hidden else value for key, value in self.counts.items()}

    def _hidden(
        self,
        conn: psycopg.Connection,
        members: Iterable[Hashable],
        hidden: set[Hashable],
        total_known: bool,
        min_cell: int,
    ) -> set[Hashable]:
        members = list(members)
        [flags] = conn.execute(
            "select disclosure.hidden_cells(%s::bigint[], %s::boolean[], %s, %s)",
            (
                [self.counts[m] for m in members],
                [m in hidden for m in members],
                total_known,
                min_cell,
            ),
        ).fetchone()
        return {member for member, flag in zip(members, flags, strict=True) if flag}

    def _complement(
        self, conn: psycopg.Connection, members: tuple[Hashable, ...], hidden: set[Hashable]
    ) -> Hashable | None:
        [place] = conn.execute(
            "select disclosure.complement(%s::bigint[], %s::boolean[])",
            ([self.counts[m] for m in members], [m in hidden for m in members]),
        ).fetchone()
        return None if place is None else members[place - 1]

    def _gives_away(
        self, conn: psycopg.Connection, group: Sum, hidden: set[Hashable], min_cell: int
    ) -> bool:
        [gives_away] = conn.execute(
            "select disclosure.gives_away(%s::bigint[], %s::boolean[], %s)",
            (
                [self.counts[m] for m in group.members],
                [m in hidden for m in group.members],
                min_cell,
            ),
        ).fetchone()
        return bool(gives_away)


def rate_hidden(conn: psycopg.Connection, numerator: int, denominator: int) -> bool:
    """Whether a rate may not be shown: its numerator, denominator or their difference small."""
    [hidden] = conn.execute(
        "select disclosure.rate_hidden(%s, %s, %s)", (numerator, denominator, min_cell_size())
    ).fetchone()
    return bool(hidden)


def display(value: float | None, form: str = "{}") -> str:
    return HIDDEN if value is None else form.format(value)
