"""The reader of a published table of counts who tries to work out what it hides.

A reader knows the figures shown and the sums that tie them (a received count is its loaded and
quarantined rows; quarters add up to the encounters one can count). Each hidden figure is an
unknown of at least 1 (0 is always shown, so a hidden figure is none), any other unknown of at
least 0; each sum bounds it by the others, again and again until nothing moves
(interval propagation over the linear sums). A hidden figure is given away when its bounds pin
one value, or show it to be 10 or less: a count of 1 to 10 is what the small-cell rule hides, and
a hidden figure known to be at most 10 is known to be one, or none.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

UNBOUNDED = 10**12
SMALLEST_SHOWN = 11  # dbt_project.yml vars.min_cell_size


def bounds(
    shown: dict[Hashable, int | None], sums: Iterable[tuple[list[Hashable], list[Hashable]]]
) -> dict[Hashable, tuple[int, int]]:
    """What a reader can know of each figure: (lowest, highest). `sums`: (totals, members), the
    totals adding up to what the members add up to; a key in no `shown` is an unknown too."""
    sums = [(list(totals), list(members)) for totals, members in sums]
    keys = set(shown) | {key for totals, members in sums for key in totals + members}
    low = {
        key: shown[key] if shown.get(key) is not None else 1 if key in shown else 0 for key in keys
    }
    high = {key: shown[key] if shown.get(key) is not None else UNBOUNDED for key in keys}
    moved = True
    while moved:
        moved = False
        for totals, members in sums:
            # sum(totals) - sum(members) = 0: each figure is bounded by all the others
            signed = [(key, 1) for key in totals] + [(key, -1) for key in members]
            for key, sign in signed:
                others = [(k, s) for k, s in signed if k != key]
                # sign * key = -sum(s * k over the others)
                lowest = -sum(s * (high[k] if s > 0 else low[k]) for k, s in others)
                highest = -sum(s * (low[k] if s > 0 else high[k]) for k, s in others)
                if sign < 0:
                    lowest, highest = -highest, -lowest
                if lowest > low[key]:
                    low[key], moved = lowest, True
                if highest < high[key]:
                    high[key], moved = highest, True
    return {key: (low[key], high[key]) for key in keys}


def given_away(
    shown: dict[Hashable, int | None], sums: Iterable[tuple[list[Hashable], list[Hashable]]]
) -> dict[Hashable, tuple[int, int]]:
    """The hidden figures a reader can pin, or show to be 10 or less, with their bounds."""
    known = bounds(shown, sums)
    return {
        key: (low, high)
        for key, (low, high) in known.items()
        if key in shown and shown[key] is None and (low == high or high < SMALLEST_SHOWN)
    }
