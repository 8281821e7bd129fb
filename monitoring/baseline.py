"""A baseline for the vitals processor's first start after a restore or an upgrade.

After `hcw restore` the landing files archived after the moment restored to come back into
landing (ingestion/after_restore.py), and after an upgrade the processor may score what it has
not scored yet by new rules: either way it scores readings that are history. Its first start then
takes a baseline: readings older than `baseline.horizon_seconds` (monitoring.yml) before the
start are scored as a replay is, their alerts recorded (`raised_in_baseline`) without a
notification or an escalation; newer readings alert as usual, so nothing taken during an outage is
hidden. The baseline ends once the processor has caught up (no file waiting, none unscored but
the files put by as unscorable: scored later, theirs are alerts nobody saw, and alert).
`monitoring.baseline_requests` and the health row say when it ran and what it scored as history.

- a restore: `hcw restore` records a request (`request`);
- an upgrade: a start that finds another scoring version in the status row than SCORING_VERSION
  records one itself. A warehouse's very first start is no upgrade: nothing was live before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

# Raise with every change to how readings are scored or alerted: the next start is a baseline.
SCORING_VERSION = "2026-12-news2-inputs"


@dataclass(frozen=True)
class Baseline:
    request_id: int
    reason: str
    history_before_us: int  # readings measured before this are history


def request(warehouse: Warehouse, reason: str) -> None:
    """Have the processor's next start take a baseline (`hcw restore` calls it, as the
    administrator)."""
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as conn:
        conn.execute("insert into monitoring.baseline_requests (reason) values (%s)", (reason,))
    log.info("the vitals processor's next start takes a baseline (%s)", reason)


def take(conn: psycopg.Connection, processor: str, horizon_seconds: float) -> Baseline | None:
    """At a start: the baseline to take now, if a restore asked for one or the scoring version
    changed; the status row is given this version either way. Committed."""
    row = conn.execute(
        "select scoring_version from monitoring.processor_status where processor = %s",
        (processor,),
    ).fetchone()
    if row is not None and row[0] != SCORING_VERSION:
        conn.execute("insert into monitoring.baseline_requests (reason) values ('upgrade')")
    conn.execute(
        "insert into monitoring.processor_status as status (processor, scoring_version)"
        " values (%(processor)s, %(version)s) on conflict (processor)"
        " do update set scoring_version = excluded.scoring_version",
        {"processor": processor, "version": SCORING_VERSION},
    )
    now = datetime.now(UTC)
    # a start after a crash during a baseline keeps its horizon: what the first start would have
    # notified is notified still
    taken = conn.execute(
        """
        update monitoring.baseline_requests set started_at = coalesce(started_at, %(now)s),
            history_before = coalesce(history_before, %(before)s)
        where finished_at is null
        returning request_id, reason, history_before
        """,
        {"now": now, "before": now - timedelta(seconds=horizon_seconds)},
    ).fetchall()
    conn.commit()
    if not taken:
        return None
    request_id, reason, history_before = max(taken)
    log.warning(
        "baseline (%s): readings taken before %s are scored as history, without notifications",
        reason, history_before.isoformat(timespec="seconds"),
    )  # fmt: skip
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return Baseline(request_id, reason, (history_before - epoch) // timedelta(microseconds=1))


def record(conn: psycopg.Connection, readings: int, alerts: int) -> None:
    """Add one file's readings scored as history and alerts recorded without notifying, in the
    transaction of its checkpoint."""
    conn.execute(
        """
        update monitoring.baseline_requests set
            readings_as_history = readings_as_history + %(readings)s,
            alerts_without_notification = alerts_without_notification + %(alerts)s
        where started_at is not null and finished_at is null
        """,
        {"readings": readings, "alerts": alerts},
    )


def finish(conn: psycopg.Connection) -> tuple[int, int]:
    """The baseline is over: (readings scored as history, alerts recorded without notifying)."""
    rows = conn.execute(
        "update monitoring.baseline_requests set finished_at = now()"
        " where started_at is not null and finished_at is null"
        " returning readings_as_history, alerts_without_notification"
    ).fetchall()
    return max(rows, default=(0, 0))
