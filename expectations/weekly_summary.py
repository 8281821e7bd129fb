"""The week in numbers, for the Monday email: what each source received, loaded and quarantined,
what the quarantine holds by rule, the gate's decisions, and the published 30-day readmission rate.

Counts and rates only: no record, no identifier (the email goes to everyone on the list).

hcw weekly-summary   # print this week's summary
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from warehouse.connection import Warehouse


@dataclass(frozen=True)
class WeekSummary:
    since: datetime
    until: datetime
    volumes: list[tuple[str, int, int, int]]  # source, received, loaded, quarantined
    quarantined_by_rule: list[tuple[str, int]]
    builds: int
    builds_passed: int
    publications: int
    index_stays: int
    readmission_rate: float | None

    def render(self) -> str:
        lines = [
            f"Week {self.since:%Y-%m-%d} to {self.until:%Y-%m-%d} (UTC)",
            "",
            "Rows by source (received = loaded + quarantined):",
            *(
                f"  {source:<14}{received:>9} = {loaded} + {quarantined}"
                for source, received, loaded, quarantined in self.volumes
            ),
            *([] if self.volumes else ["  nothing landed"]),
            "",
            "Quarantined this week, by rule:",
            *(f"  {rule:<40}{count:>7}" for rule, count in self.quarantined_by_rule),
            *([] if self.quarantined_by_rule else ["  none"]),
            "",
            (
                f"Quality gate: {self.builds_passed} of {self.builds} builds passed;"
                f" {self.publications} published"
            ),
            "30-day readmission rate (published build): "
            + (
                f"{self.readmission_rate:.1%} of {self.index_stays} index stays"
                if self.readmission_rate is not None
                else "no published stays"
            ),
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
            group by rule order by 2 desc, 1
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
    index_stays, rate = _readmissions(warehouse)
    return WeekSummary(
        since, until, volumes, quarantined_by_rule, builds, passed, publications, index_stays, rate
    )


def _readmissions(warehouse: Warehouse) -> tuple[int, float | None]:
    """Index stays and their 30-day readmission rate, as the analysts' published mart has them."""
    with psycopg.connect(**warehouse.connect_kwargs("analyst")) as conn:
        stays, rate = conn.execute(
            "select count(*)::int, avg(is_readmitted_within_30_days::int)::float"
            " from analytics.mart_readmissions_30d"
        ).fetchone()
    return stays, rate
