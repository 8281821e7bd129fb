"""Clinical operations' commands on alerts.

    hcw alerts open
    hcw alerts acknowledge ALERT_KEY --by "Charge nurse, ward 4"

Acknowledging records who and when, and stops the alert's escalation; it does not resolve it (the
patient's recovering scores do).
"""

from __future__ import annotations

import logging

import psycopg

from warehouse.connection import Warehouse

log = logging.getLogger(__name__)


class NotAcknowledged(Exception):
    """No such alert, or not open, or acknowledged already."""


def acknowledge(warehouse: Warehouse, alert_key: str, by: str) -> None:
    """Record who acknowledged an open alert, and when (as `clinical_ops`: their only write)."""
    if not by.strip():
        raise NotAcknowledged("say who acknowledges (--by)")
    with psycopg.connect(**warehouse.connect_kwargs("clinical_ops")) as conn:
        done = conn.execute(
            "update monitoring.alerts set acknowledged_by = %s, acknowledged_at = now()"
            " where alert_key = %s and resolved_at is null and acknowledged_at is null"
            " returning alert_key",
            (by.strip(), alert_key),
        ).fetchone()
        if done:
            return
        row = conn.execute(
            "select acknowledged_by from monitoring.alerts where alert_key = %s", (alert_key,)
        ).fetchone()
    if row is None:
        raise NotAcknowledged(f"no alert {alert_key}")
    [acknowledged_by] = row
    if acknowledged_by is not None:
        raise NotAcknowledged(f"alert {alert_key} was acknowledged already by {acknowledged_by}")
    raise NotAcknowledged(f"alert {alert_key} is resolved")


def open_alerts(warehouse: Warehouse) -> list[tuple]:
    with psycopg.connect(**warehouse.connect_kwargs("clinical_ops")) as conn:
        return conn.execute(
            """
            select alert_key::text, condition, ward, room, news2_score, raised_at,
                escalated_at is not null, acknowledged_by
            from monitoring.alerts where resolved_at is null order by raised_at
            """
        ).fetchall()
