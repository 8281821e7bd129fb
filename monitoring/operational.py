"""Operational alerts: nothing the vitals feed depends on stops quietly.

Each measure has a threshold in monitoring.yml (`operational`); the processor notes what happens
as it happens (a `Watch`) and measures at most once a second, and after every failed cycle:

- files_set_aside: vitals files set aside for their own errors (unreadable, unparsable) in the
  last `window_seconds` (their reasons beside them in var/quarantine/vitals/);
- readings_quarantined: vitals readings quarantined at landing in the window (no device, patient
  or time, a time that cannot be read, a vital that is not a number): readings nobody scores;
- times_unsettled: of those, the readings whose time could not be read or placed (a local time of
  the autumn's repeated hour the device's order did not settle is held, never guessed): by
  default one is enough for an alert;
- clock_ahead: how far a device's reading in the window was ahead of the host's clock when its
  file was found (such readings are scored as they say; the alert names the devices);
- notifications_unsent: how long the oldest notification has waited unsent (a channel down);
- landing_failing: how long a file has been held in landing because landing it failed for a
  reason not its own (a full disk, a write the warehouse refused): it is tried again, never set
  aside for it;
- scoring_failing: how long the processor's cycles have failed (landed readings wait unscored);
- files_unscorable: landed vitals files whose scoring failed for a reason of their own (their
  content breaks the scoring; not the warehouse's nor the disk's): put by and tried again with a
  backoff while later files are scored, so one file never silences every patient behind it.

A measure above its threshold raises an operational alert (one open per condition) and queues a
notification through the clinical alerts' outbox (notify.py) to clinical operations; `vitals_feed`
fails its check while one is open (health.py), which emails the on-call data engineer. The alert
resolves once the measure is back at or under its threshold. A detail names files, devices and
error types, never a patient.

What the Watch noted lives in the processor's memory: a restart begins the window afresh (the
quarantined readings and set-aside files themselves stay where they are, with their reasons).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

import psycopg

from monitoring import notify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Measure:
    value: float  # a count or seconds
    detail: str


@dataclass(frozen=True)
class Thresholds:
    window_seconds: float
    limits: dict[str, float]  # condition -> the most it may be without an alert

    @classmethod
    def from_config(cls, config: dict) -> Thresholds:
        return cls(
            window_seconds=float(config["window_seconds"]),
            limits={
                "files_set_aside": float(config["max_files_set_aside"]),
                "readings_quarantined": float(config["max_quarantined_readings"]),
                # conditions added after monitoring.yml's first release: a copy of an older file
                # (MONITORING_CONFIG) alerts from the first
                "times_unsettled": float(config.get("max_unsettled_times", 0)),
                "clock_ahead": float(config["max_clock_ahead_seconds"]),
                "notifications_unsent": float(config["max_unsent_seconds"]),
                "landing_failing": float(config["max_failing_seconds"]),
                "scoring_failing": float(config["max_failing_seconds"]),
                "files_unscorable": float(config.get("max_files_unscorable", 0)),
            },
        )


@dataclass
class HeldFile:
    """A file to try again once `retry_at` has passed: one whose landing failed for a reason not
    its own (it stays in landing), or a landed one whose scoring failed for its own."""

    since: float
    why: str
    attempts: int = 1
    retry_at: float = 0.0
    readings: int = 0  # what it holds, for a landed file put by


@dataclass
class Watch:
    """What the processor saw, for the measures: events within the window, failures ongoing."""

    window_seconds: float
    set_aside: deque = field(default_factory=deque)  # (when, file name)
    quarantined: deque = field(default_factory=deque)  # (when, readings, file name)
    unsettled: deque = field(default_factory=deque)  # (when, readings, file name)
    ahead: deque = field(default_factory=deque)  # (when, seconds ahead, devices)
    held: dict[str, HeldFile] = field(default_factory=dict)  # file name -> why it waits
    unscorable: dict[str, HeldFile] = field(default_factory=dict)  # landed file name -> why
    failing_since: float | None = None
    failing_why: str = ""

    def file_set_aside(self, name: str) -> None:
        self.set_aside.append((time.time(), name))

    def readings_quarantined(self, name: str, readings: int, unsettled: int) -> None:
        if readings:
            self.quarantined.append((time.time(), readings, name))
        if unsettled:
            self.unsettled.append((time.time(), unsettled, name))

    def clock_ahead(self, seconds: float, devices: list[str]) -> None:
        if devices:
            self.ahead.append((time.time(), seconds, devices))

    def cycle_failed(self, why: str) -> None:
        self.failing_since = self.failing_since or time.time()
        self.failing_why = why

    def cycle_succeeded(self) -> None:
        self.failing_since = None

    def measures(self, unsent: int, oldest_unsent_seconds: float) -> dict[str, Measure]:
        now = time.time()
        for events in (self.set_aside, self.quarantined, self.unsettled, self.ahead):
            while events and events[0][0] < now - self.window_seconds:
                events.popleft()
        window = f"in the last {self.window_seconds:.0f} s"
        oldest_held = min((held.since for held in self.held.values()), default=None)
        held_why = sorted({held.why for held in self.held.values()})
        devices = sorted({device for _, _, names in self.ahead for device in names})
        return {
            "files_set_aside": Measure(
                len(self.set_aside),
                f"{len(self.set_aside)} vitals files set aside {window} for their own errors"
                f" (var/quarantine/vitals/): {_listed(name for _, name in self.set_aside)}",
            ),
            "readings_quarantined": Measure(
                sum(readings for _, readings, _ in self.quarantined),
                f"{sum(readings for _, readings, _ in self.quarantined)} vitals readings"
                f" quarantined at landing {window}, scored by nobody (hcw quarantine show"
                f" vitals): {_listed(name for _, _, name in self.quarantined)}",
            ),
            "times_unsettled": Measure(
                sum(readings for _, readings, _ in self.unsettled),
                f"{sum(readings for _, readings, _ in self.unsettled)} vitals readings held in"
                f" quarantine {window} because their time could not be read or placed (a local"
                " time without an offset in the autumn's repeated hour, or a time that is none):"
                " set the devices to send UTC offsets; hcw quarantine show vitals:"
                f" {_listed(name for _, _, name in self.unsettled)}",
            ),
            "clock_ahead": Measure(
                max((seconds for _, seconds, _ in self.ahead), default=0.0),
                f"device clocks ahead of the host's {window}, up to"
                f" {max((s for _, s, _ in self.ahead), default=0.0):.0f} s: {_listed(devices)}"
                " (their readings are scored at the time they say: set the devices' clocks)",
            ),
            "notifications_unsent": Measure(
                oldest_unsent_seconds,
                f"{unsent} notifications unsent, the oldest for {oldest_unsent_seconds:.0f} s:"
                " check CLINICAL_ALERT_WEBHOOK_URL or the SMTP settings in .env",
            ),
            "landing_failing": Measure(
                0.0 if oldest_held is None else now - oldest_held,
                f"{len(self.held)} vitals files held in landing: landing them fails for a reason"
                f" not theirs ({', '.join(held_why)}); they are tried again (see the processor's"
                f" log): {_listed(self.held)}",
            ),
            "scoring_failing": Measure(
                0.0 if self.failing_since is None else now - self.failing_since,
                f"the vitals processor's cycles fail ({self.failing_why}): landed readings wait"
                " unscored (see the processor's log)",
            ),
            "files_unscorable": Measure(
                len(self.unscorable),
                f"{len(self.unscorable)} landed vitals files cannot be scored, holding"
                f" {sum(held.readings for held in self.unscorable.values())} readings that raise"
                " no alert until they are (then they may, never calm one); they are tried again,"
                " later files are scored meanwhile"
                f" ({'; '.join(sorted({held.why for held in self.unscorable.values()}))}; the"
                f" processor's log has the trace): {_listed(self.unscorable)}",
            ),
        }


def _listed(names, most: int = 5) -> str:
    names = list(dict.fromkeys(names))
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def unsent(conn: psycopg.Connection) -> tuple[int, float]:
    """How many notifications are unsent, and how long the oldest has waited."""
    return conn.execute(
        "select count(*), coalesce(extract(epoch from now() - min(created_at)), 0)::float8"
        " from monitoring.notifications where sent_at is null"
    ).fetchone()


def evaluate(
    conn: psycopg.Connection, measures: dict[str, Measure], thresholds: Thresholds
) -> list[str]:
    """Raise what crossed its threshold, resolve what is back under; the conditions raised."""
    open_now = dict(
        conn.execute(
            "select condition, operational_alert_key::text from monitoring.operational_alerts"
            " where resolved_at is null"
        ).fetchall()
    )
    raised = []
    for condition, measure in measures.items():
        limit = thresholds.limits[condition]
        key = open_now.get(condition)
        if measure.value > limit and key is None:
            [(key,)] = conn.execute(
                "insert into monitoring.operational_alerts (condition, measure, threshold, detail)"
                " values (%s, %s, %s, %s) returning operational_alert_key::text",
                (condition, measure.value, limit, measure.detail),
            ).fetchall()
            notify.queue_operational(conn, key)
            log.error("operational alert %s: %s", condition, measure.detail)
            raised.append(condition)
        elif measure.value > limit:
            conn.execute(
                "update monitoring.operational_alerts set measure = greatest(measure, %s),"
                " detail = %s where operational_alert_key = %s",
                (measure.value, measure.detail, key),
            )
        elif key is not None:
            conn.execute(
                "update monitoring.operational_alerts set resolved_at = now()"
                " where operational_alert_key = %s",
                (key,),
            )
            log.warning("operational alert %s resolved", condition)
    conn.commit()
    return raised
