"""Monitoring's tables by day: monitoring.readings and monitoring.vitals_minute are partitioned by
UTC day (migration 0021). A day's partition is made before its first row is written, and whole
days older than the retention in monitoring.yml (`retention`) are dropped, never deleted row by
row: at 10,000 readings a second a day is 864 million readings.

Making and dropping partitions runs in the warehouse as the migrations' owner, through two
functions that can do nothing else (monitoring.ensure_partitions, drop_partitions_before): the
processor's role creates and drops no table.

Retention counts back from the newest reading scored or today, whichever is earlier: a feed of
today keeps its last `readings_days` days; readings of the past (a demo's, a backfill's) are kept
that long before their own newest, not dropped for being old; a device clock ahead moves nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg

log = logging.getLogger(__name__)

DAY_US = 86_400_000_000
EPOCH_DAY = date(1970, 1, 1)
TABLES = {"readings": "readings_days", "vitals_minute": "minute_windows_days"}


@dataclass
class Partitions:
    """The days whose partitions this processor knows exist."""

    days: set[date] = field(default_factory=set)

    def ensure(self, conn: psycopg.Connection, measured_us: np.ndarray) -> None:
        """Make the partitions of the days of `measured_us` that are missing, in the caller's
        transaction (`forget()` them if it rolls back)."""
        wanted = {EPOCH_DAY + timedelta(days=int(day)) for day in np.unique(measured_us // DAY_US)}
        for day in sorted(wanted - self.days):
            made = conn.execute(
                "select monitoring.ensure_partitions(%s, %s)", (day, day)
            ).fetchone()
            if made[0]:
                log.info("partitions of %s made", day)
            self.days.add(day)

    def forget(self) -> None:
        self.days.clear()


def drop_expired(
    conn: psycopg.Connection, retention: dict, newest_us: int | None, partitions: Partitions
) -> list[str]:
    """Drop the partitions older than each table's retention; the partitions dropped."""
    today = datetime.now(UTC).date()
    newest = (
        today if newest_us is None else min(today, EPOCH_DAY + timedelta(days=newest_us // DAY_US))
    )
    dropped: list[str] = []
    for table, setting in TABLES.items():
        # never within the last week: the warehouse refuses it (migration 0021)
        cutoff = min(newest - timedelta(days=int(retention[setting])), today - timedelta(days=7))
        dropped += [
            name
            for (name,) in conn.execute(
                "select monitoring.drop_partitions_before(%s, %s)", (table, cutoff)
            ).fetchall()
        ]
    conn.commit()
    if dropped:
        log.warning("retention: dropped %s", ", ".join(dropped))
        partitions.forget()  # a day dropped is made again if a reading of it comes
    return dropped
