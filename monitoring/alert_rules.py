"""When a patient's scores raise, resolve and escalate an alert: the rules, apart from storage.

Two conditions by NEWS2 level (news2.py), `critical` and `warning`, and one by the values
themselves, `extreme` (vital_validity.py: a heart rate of 0, an SpO2 of 25 %; severity critical,
"verify patient now"):
- An extreme alert is raised at once by a reading with an extreme value, naming the vitals,
  whatever else is open; it resolves once complete readings without one have lasted the hold.
- A critical alert is raised by the first critical reading.
- A warning is raised only once the patient has been at warning level or above for the configured
  persistence (5 minutes), counted from the first reading of that spell; a critical alert open
  at the time covers it.
- The same condition is not raised again for a patient while its alert is open.
- An open alert resolves once the patient has stayed below its level for the hold
  (`resolve_hold_seconds`), counted from the first complete reading below it; any reading at or
  above its level starts the count again (`recovered`). So a score swinging across 7 makes one
  critical alert, not one per swing, and the same alert cannot be raised again within the hold.
  An open warning also resolves when a critical alert is raised over it (`superseded`). A reading
  lacking a parameter scores lower than the patient may be: it can raise an alert, keep a spell
  going or restart the hold, never resolve an alert, start the hold or end a spell.
- An open alert nobody acknowledged is escalated once, the configured time after it was recorded.
- A reading older than the patient's newest one from another device (that device's delayed
  backlog) may raise an alert or restart a hold, never resolve one, start a hold or end a spell.

Time here is the readings' own (microseconds since the epoch), so a replay of the same readings
raises and resolves the same alerts. A reading older than its device's newest scored one for the
patient (a device's late file) is scored but moves no alert; lateness is the device's own, so a
device whose clock runs ahead never makes another device's readings late.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitoring.news2 import CRITICAL, NO_ALERT, WARNING

CONDITION_LEVELS = {"critical": CRITICAL, "warning": WARNING}
EXTREME = "extreme"  # raised by the values, not the score: vital_validity.py


@dataclass(frozen=True)
class AlertRules:
    warning_persistence_us: int
    escalate_after: timedelta
    resolve_hold_us: int = 0

    @classmethod
    def from_config(cls, config: dict) -> AlertRules:
        return cls(
            warning_persistence_us=int(config["warning_persistence_seconds"] * 1_000_000),
            escalate_after=timedelta(seconds=config["escalate_after_seconds"]),
            resolve_hold_us=int(config["resolve_hold_seconds"] * 1_000_000),
        )


@dataclass
class PatientState:
    """What the rules remember of one patient between readings (stored at each checkpoint)."""

    warning_since_us: int | None = None  # first reading of the current spell at warning or above
    # device -> its newest reading of this patient that moved alerts
    last_scored_us: dict[str, int] = field(default_factory=dict)
    open_alerts: dict[str, str] = field(default_factory=dict)  # condition -> alert key
    # condition -> the first complete reading below its level since the last one at or above
    calm_since_us: dict[str, int] = field(default_factory=dict)
    # conditions whose open alert a baseline raised from history, nobody notified
    history_alerts: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Reading:
    reading_key: str
    measured_us: int
    level: int
    score: int
    complete: bool = True  # every NEWS2 parameter present (an artefact is absent)
    extreme: tuple[str, ...] = ()  # the vitals whose value is extreme
    device_id: str = ""
    history: bool = False  # older than a baseline's horizon (baseline.py): alerts without notice
    # of a file put by because its scoring failed, scored once mended: its readings may be older
    # than its device's newest by then, yet nobody saw them; they may raise, never calm
    held_back: bool = False


@dataclass(frozen=True)
class AlertChange:
    kind: str  # raised | resolved
    condition: str
    alert_key: str
    reading: Reading
    resolution: str | None = None  # recovered | superseded


def alert_key(patient_key: str, condition: str, reading_key: str) -> str:
    """The same alert on a replay: derived from the patient's random key, never from an id."""
    digest = hashlib.md5(f"{patient_key}|{condition}|{reading_key}".encode()).digest()
    return str(uuid.UUID(bytes=digest))


def is_late(state: PatientState, reading: Reading) -> bool:
    """Older than its device's newest scored reading of the patient: scored, moves no alert."""
    newest = state.last_scored_us.get(reading.device_id)
    return newest is not None and reading.measured_us < newest


def is_behind(state: PatientState, reading: Reading) -> bool:
    """Older than the patient's newest reading that moved alerts, from any device (another
    device's delayed backlog): it may raise an alert or restart a hold, never calm the patient
    (resolve, start a hold, end a spell): newer readings have spoken since."""
    newest = max(state.last_scored_us.values(), default=None)
    return newest is not None and reading.measured_us < newest


def apply(
    state: PatientState, patient_key: str, reading: Reading, rules: AlertRules
) -> list[AlertChange]:
    """Move `state` on by one reading; return the alerts it raised or resolved."""
    late = is_late(state, reading)
    if late and not reading.held_back:
        return []
    settles = not late and not is_behind(state, reading)
    if not late:
        state.last_scored_us[reading.device_id] = reading.measured_us
    changes = []
    if not reading.history:
        _supersede_history(state, reading, changes)
    for condition, level in CONDITION_LEVELS.items():
        _settle(state, condition, reading, reading.level >= level, settles, rules, changes)
    _settle(state, EXTREME, reading, bool(reading.extreme), settles, rules, changes)
    if reading.extreme and EXTREME not in state.open_alerts:
        changes.append(_raise(state, patient_key, EXTREME, reading))
    if reading.level == NO_ALERT:
        if reading.complete and settles:
            state.warning_since_us = None
        return changes
    if state.warning_since_us is None:
        state.warning_since_us = reading.measured_us
    if reading.level == CRITICAL and "critical" not in state.open_alerts:
        if "warning" in state.open_alerts:
            key = state.open_alerts.pop("warning")
            state.calm_since_us.pop("warning", None)
            state.history_alerts.discard("warning")
            changes.append(AlertChange("resolved", "warning", key, reading, "superseded"))
        changes.append(_raise(state, patient_key, "critical", reading))
    persisted = reading.measured_us - state.warning_since_us >= rules.warning_persistence_us
    if (
        reading.level == WARNING
        and persisted
        and not state.open_alerts.keys() & CONDITION_LEVELS.keys()
    ):
        changes.append(_raise(state, patient_key, "warning", reading))
    return changes


def _supersede_history(state: PatientState, reading: Reading, changes: list[AlertChange]) -> None:
    """A reading of now at or above the level of an alert a baseline raised from history
    (nobody was told of it) resolves that one as superseded: the rules then raise a new alert,
    notified, as for any patient at that level now."""
    if not state.history_alerts:
        return
    at_or_above = {
        condition: reading.level >= level for condition, level in CONDITION_LEVELS.items()
    }
    at_or_above[EXTREME] = bool(reading.extreme)
    for condition in sorted(state.history_alerts & state.open_alerts.keys()):
        if at_or_above[condition]:
            key = state.open_alerts.pop(condition)
            state.calm_since_us.pop(condition, None)
            state.history_alerts.discard(condition)
            changes.append(AlertChange("resolved", condition, key, reading, "superseded"))


def _settle(
    state: PatientState,
    condition: str,
    reading: Reading,
    at_or_above: bool,
    settles: bool,
    rules: AlertRules,
    changes: list[AlertChange],
) -> None:
    """Resolve the open alert of `condition` once complete readings below it have lasted the
    hold; a reading at or above it (`at_or_above`) starts the count again. Only a reading that
    `settles` (is_behind) counts towards the hold."""
    if condition not in state.open_alerts:
        return
    if at_or_above:
        state.calm_since_us.pop(condition, None)
        return
    if not reading.complete or not settles:  # it may lack the very parameter that is bad
        return
    since = state.calm_since_us.setdefault(condition, reading.measured_us)
    if reading.measured_us - since >= rules.resolve_hold_us:
        del state.calm_since_us[condition]
        state.history_alerts.discard(condition)
        key = state.open_alerts.pop(condition)
        changes.append(AlertChange("resolved", condition, key, reading, "recovered"))


def _raise(state: PatientState, patient_key: str, condition: str, reading: Reading) -> AlertChange:
    key = alert_key(patient_key, condition, reading.reading_key)
    state.open_alerts[condition] = key
    if reading.history:
        state.history_alerts.add(condition)
    return AlertChange("raised", condition, key, reading)


def due_for_escalation(
    recorded_at: datetime,
    now: datetime,
    rules: AlertRules,
    acknowledged_at: datetime | None = None,
    escalated_at: datetime | None = None,
    resolved_at: datetime | None = None,
) -> bool:
    """An open alert nobody acknowledged, not escalated yet, recorded long enough ago."""
    if acknowledged_at or escalated_at or resolved_at:
        return False
    return now - recorded_at >= rules.escalate_after
