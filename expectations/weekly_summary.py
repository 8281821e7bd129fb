"""The week in numbers, for the Monday email: what each source received, loaded and quarantined,
what the quarantine holds by rule, the gate's decisions, and the published 30-day readmission rate.

Counts and rates only: no record, no identifier (the email goes to everyone on the list), and
no small cell: a count of 1 to 10, a figure that would give one away (a source's received rows
are its loaded and quarantined ones; the week's quarantined records by rule add up to those of
every source) and a rate whose numerator, denominator or difference is small are shown as
"hidden" (common/small_cells.py).

hcw weekly-summary   # print this week's summary
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from common.small_cells import LEGEND, Figures, display, rate_hidden
from warehouse.connection import Warehouse


@dataclass(frozen=True)
class WeekSummary:
    since: datetime
    until: datetime
    # counts as they may be shown: None where hidden (small, or giving a small one away)
    volumes: list[tuple[str, int | None, int | None, int | None]]  # received, loaded, quarantined
    quarantined_by_rule: list[tuple[str, int | None]]
    builds: int
    builds_passed: int
    publications: int
    index_stays: int | None
    readmission_rate: float | None  # None where there are no stays or the rate is hidden

    def render(self) -> str:
        lines = [
            f"Week {self.since:%Y-%m-%d} to {self.until:%Y-%m-%d} (UTC)",
            "",
            "Rows by source (received = loaded + quarantined):",
            *(
                f"  {source:<14}{display(received):>9} = {display(loaded)} + {display(quarantined)}"
                for source, received, loaded, quarantined in self.volumes
            ),
            *([] if self.volumes else ["  nothing landed"]),
            "",
            "Quarantined this week, by rule:",
            *(f"  {rule:<40}{display(count):>7}" for rule, count in self.quarantined_by_rule),
            *([] if self.quarantined_by_rule else ["  none"]),
            "",
            (
                f"Quality gate: {self.builds_passed} of {self.builds} builds passed;"
                f" {self.publications} published"
            ),
            "30-day readmission rate (published build): "
            + (
                "no published stays"
                if self.index_stays == 0
                else f"{display(self.readmission_rate, '{:.1%}')} of"
                f" {display(self.index_stays)} index stays"
            ),
            "",
            LEGEND,
            "",
            "The quality report is attached (make report builds it too).",
        ]
        return "\n".join(lines)


def summarize_week(warehouse: Warehouse, until: datetime | None = None) -> WeekSummary:
    until = until or datetime.now(UTC)
    since = until - timedelta(days=7)
    window = {"since": since, "until": until}
    with psycopg.connect(**warehouse.connect_kwargs("steward")) as conn:
        volumes = conn.execute(
            """
            with landed as (
                select source, rows_received, rows_loaded, rows_quarantined, recorded_at as at
                from audit.file_ledger
                union all
                select source, rows_received, rows_loaded, rows_quarantined, recorded_at
                from audit.api_pulls
            )
            select source, sum(rows_received)::int, sum(rows_loaded)::int,
                   sum(rows_quarantined)::int
            from landed where at >= %(since)s and at < %(until)s
            group by source order by source
            """,
            window,
        ).fetchall()
        quarantined_by_rule = conn.execute(
            """
            select rule, count(*)::int from quarantine.quarantined_records
            where quarantined_at >= %(since)s and quarantined_at < %(until)s
            group by rule order by rule
            """,
            window,
        ).fetchall()
        builds, passed = conn.execute(
            """
            select count(*)::int, count(*) filter (where passed)::int from audit.gate_results
            where checkpoint = 'publish_gate'
              and recorded_at >= %(since)s and recorded_at < %(until)s
            """,
            window,
        ).fetchone()
        publications = conn.execute(
            "select count(*)::int from audit.publications"
            " where published_at >= %(since)s and published_at < %(until)s",
            window,
        ).fetchone()[0]
        stays, readmitted = _readmissions(warehouse)
        figures = Figures()
        for source, received, loaded, quarantined in volumes:
            figures.count((source, "received"), received)
            figures.count((source, "loaded"), loaded)
            figures.count((source, "quarantined"), quarantined)
            figures.sum([(source, "received")], [(source, "loaded"), (source, "quarantined")])
        for rule, count in quarantined_by_rule:
            figures.count(("rule", rule), count)
        figures.sum(
            [(source, "quarantined") for source, *_ in volumes],
            [("rule", rule) for rule, _ in quarantined_by_rule],
        )
        figures.count("index stays", stays)
        shown = figures.shown(conn)
        rate = None if stays == 0 or rate_hidden(conn, readmitted, stays) else readmitted / stays
    return WeekSummary(
        since,
        until,
        [
            (source, *(shown[(source, kind)] for kind in ("received", "loaded", "quarantined")))
            for source, *_ in volumes
        ],
        [(rule, shown[("rule", rule)]) for rule, _ in quarantined_by_rule],
        builds,
        passed,
        publications,
        shown["index stays"],
        rate,
    )


def _readmissions(warehouse: Warehouse) -> tuple[int, int]:
    """Index stays and those readmitted within 30 days, as the analysts' published mart has them."""
    with psycopg.connect(**warehouse.connect_kwargs("analyst")) as conn:
        stays, readmitted = conn.execute(
            "select count(*)::int, count(*) filter (where is_readmitted_within_30_days)::int"
            " from analytics.mart_readmissions_30d"
        ).fetchone()
    return stays, readmitted
