"""Is the vitals processor alive and keeping up? What the `vitals_feed` DAG checks every minute and
the quality report shows, from monitoring.processor_status (which the processor rewrites at every
checkpoint and idle poll).

- heartbeat: how long ago the processor last wrote its status (it writes at least every poll);
- lag: how long the oldest micro-batch waiting in landing has waited (0 when none waits);
- throughput: new readings scored in the last minute, a second;
- last checkpoint: when it last finished scoring a file, and the newest reading time scored;
- notifications: how many are unsent, and how long the oldest has waited (a channel down);
- artefacts: how many vital values no device could have measured it has seen (vital_validity.py);
- operational alerts: what stopped or crossed a threshold and is not back (operational.py): any
  open one fails the check;
- baseline: when its latest baseline (a first start after a restore or an upgrade) began and
  ended, and how many readings it scored as history, without notifying (baseline.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from warehouse.connection import Warehouse


class ProcessorUnhealthy(Exception):
    """The processor is not running, or the micro-batches wait too long."""


@dataclass(frozen=True)
class Health:
    heartbeat_age_seconds: float
    files_waiting: int
    lag_seconds: float
    readings_per_second: float
    last_checkpoint_at: datetime | None
    newest_reading_processed_at: datetime | None
    notifications_unsent: int
    oldest_unsent_seconds: float
    artefact_values: int = 0
    baseline_started_at: datetime | None = None
    baseline_finished_at: datetime | None = None
    baseline_readings_as_history: int = 0
    operational_alerts: tuple[tuple[str, str], ...] = ()  # (condition, detail) of each open one


def read_health(warehouse: Warehouse, role: str = "steward") -> Health | None:
    """The processor's last status; None if it never ran."""
    with psycopg.connect(**warehouse.connect_kwargs(role)) as conn:
        row = conn.execute(
            """
            select extract(epoch from now() - heartbeat_at)::float8, files_waiting,
                oldest_waiting_seconds, readings_per_second, last_checkpoint_at,
                newest_reading_processed_at, notifications_unsent, oldest_unsent_seconds,
                artefact_values, baseline.started_at, baseline.finished_at,
                coalesce(baseline.readings_as_history, 0)
            from monitoring.processor_status
            left join lateral (
                select started_at, finished_at, readings_as_history
                from monitoring.baseline_requests where started_at is not null
                order by started_at desc, request_id desc limit 1
            ) as baseline on true
            """
        ).fetchone()
        if row is None:
            return None
        alerts = conn.execute(
            "select condition, detail from monitoring.operational_alerts"
            " where resolved_at is null order by raised_at"
        ).fetchall()
    return Health(*row, operational_alerts=tuple(alerts))


def check(
    warehouse: Warehouse,
    heartbeat_seconds: float,
    max_lag_seconds: float,
    max_unsent_seconds: float = float("inf"),
) -> Health:
    """The processor's health, or ProcessorUnhealthy saying what is wrong."""
    health = read_health(warehouse)
    if health is None:
        raise ProcessorUnhealthy(
            "the vitals processor never ran: start it (make up, or hcw processor)"
        )
    if health.heartbeat_age_seconds > heartbeat_seconds:
        raise ProcessorUnhealthy(
            f"no heartbeat from the vitals processor for {health.heartbeat_age_seconds:.0f} s"
            f" (limit {heartbeat_seconds:.0f} s): it is stopped or stuck; see"
            " var/logs/airflow/vitals-processor.log"
        )
    if health.lag_seconds > max_lag_seconds:
        raise ProcessorUnhealthy(
            f"the vitals processor lags: {health.files_waiting} micro-batches wait, the oldest"
            f" for {health.lag_seconds:.0f} s (limit {max_lag_seconds:.0f} s)"
        )
    if health.oldest_unsent_seconds > max_unsent_seconds:
        raise ProcessorUnhealthy(
            f"{health.notifications_unsent} clinical alert notifications are unsent, the oldest"
            f" for {health.oldest_unsent_seconds:.0f} s (limit {max_unsent_seconds:.0f} s):"
            " check CLINICAL_ALERT_WEBHOOK_URL or the SMTP settings in .env"
        )
    if health.operational_alerts:
        raise ProcessorUnhealthy(
            "operational alerts open: "
            + "; ".join(f"{condition}: {detail}" for condition, detail in health.operational_alerts)
        )
    return health
