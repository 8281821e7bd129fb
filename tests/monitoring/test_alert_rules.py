"""The alert rules, reading by reading: persistence, no duplicates, escalation,
acknowledgement, resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitoring.alert_rules import (
    AlertRules,
    PatientState,
    Reading,
    alert_key,
    apply,
    due_for_escalation,
    is_late,
)
from monitoring.news2 import CRITICAL, NO_ALERT, WARNING

RULES = AlertRules(warning_persistence_us=300 * 1_000_000, escalate_after=timedelta(minutes=10))
PATIENT = "6f1c2a54-0000-4000-8000-000000000001"


def _readings(levels: list[int], every_seconds: int = 60, start: int = 0) -> list[Reading]:
    return [
        Reading(f"r{start + i}", (start + i) * every_seconds * 1_000_000, level, 5 + 2 * level)
        for i, level in enumerate(levels)
    ]


def _run(state: PatientState, readings: list[Reading]) -> list[tuple[str, str, str, str | None]]:
    """(kind, condition, reading, resolution) of every change, in order."""
    changes = []
    for reading in readings:
        for change in apply(state, PATIENT, reading, RULES):
            changes.append(
                (change.kind, change.condition, change.reading.reading_key, change.resolution)
            )
    return changes


def test_a_critical_reading_raises_at_once():
    state = PatientState()
    assert _run(state, _readings([NO_ALERT, CRITICAL])) == [("raised", "critical", "r1", None)]
    assert state.open_alerts == {"critical": alert_key(PATIENT, "critical", "r1")}


def test_a_warning_is_raised_only_once_it_has_lasted_five_minutes():
    state = PatientState()
    # warning from r1 (60 s) on: r6 (360 s) is the first reading 300 s into the spell
    changes = _run(state, _readings([NO_ALERT] + [WARNING] * 7))
    assert changes == [("raised", "warning", "r6", None)]


def test_a_warning_that_does_not_last_is_never_raised():
    state = PatientState()
    levels = [WARNING] * 4 + [NO_ALERT] + [WARNING] * 4  # the calm reading restarts the count
    assert _run(state, _readings(levels)) == []
    assert state.warning_since_us == 5 * 60 * 1_000_000


def test_an_open_alert_is_not_raised_again():
    state = PatientState()
    changes = _run(state, _readings([CRITICAL] * 20))
    assert changes == [("raised", "critical", "r0", None)]
    changes = _run(state, _readings([WARNING] * 10 + [NO_ALERT], start=0, every_seconds=1))
    assert changes == []  # older than the newest scored reading: late, moves nothing


def test_an_alert_resolves_when_the_score_recovers_and_can_be_raised_again():
    state = PatientState()
    changes = _run(state, _readings([CRITICAL, CRITICAL, NO_ALERT, CRITICAL]))
    assert changes == [
        ("raised", "critical", "r0", None),
        ("resolved", "critical", "r2", "recovered"),
        ("raised", "critical", "r3", None),
    ]


def test_critical_supersedes_an_open_warning_and_recovering_to_warning_level_raises_it_again():
    state = PatientState()
    levels = [WARNING] * 6 + [CRITICAL, CRITICAL, WARNING, NO_ALERT]
    assert _run(state, _readings(levels)) == [
        ("raised", "warning", "r5", None),
        ("resolved", "warning", "r6", "superseded"),
        ("raised", "critical", "r6", None),
        # back to warning level after more than five minutes at warning or above
        ("resolved", "critical", "r8", "recovered"),
        ("raised", "warning", "r8", None),
        ("resolved", "warning", "r9", "recovered"),
    ]
    assert state.open_alerts == {}


def test_the_same_readings_raise_the_same_alert_keys():
    first, second = PatientState(), PatientState()
    readings = _readings([NO_ALERT, CRITICAL, NO_ALERT, WARNING] + [WARNING] * 6)
    keys = [c.alert_key for r in readings for c in apply(first, PATIENT, r, RULES)]
    again = [c.alert_key for r in readings for c in apply(second, PATIENT, r, RULES)]
    assert keys == again and len(set(keys)) == 2
    assert alert_key("another-patient", "critical", "r1") not in keys


def test_an_unacknowledged_alert_escalates_once_after_the_configured_time():
    recorded = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    at = recorded + timedelta(minutes=10)
    assert not due_for_escalation(recorded, at - timedelta(seconds=1), RULES)
    assert due_for_escalation(recorded, at, RULES)
    assert not due_for_escalation(recorded, at, RULES, escalated_at=at)  # once


def test_an_acknowledged_or_resolved_alert_does_not_escalate():
    recorded = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    late = recorded + timedelta(hours=1)
    assert not due_for_escalation(recorded, late, RULES, acknowledged_at=recorded)
    assert not due_for_escalation(recorded, late, RULES, resolved_at=recorded)


def test_a_reading_lacking_a_parameter_neither_resolves_nor_ends_a_spell():
    state = PatientState()
    partial_calm = Reading("p1", 60_000_000, NO_ALERT, 0, complete=False)
    partial_critical = Reading("p2", 120_000_000, CRITICAL, 8, complete=False)
    assert [c.kind for c in apply(state, PATIENT, Reading("r0", 0, CRITICAL, 9), RULES)] == [
        "raised"
    ]
    assert apply(state, PATIENT, partial_calm, RULES) == []  # a cuff alone: SpO2 unknown
    assert "critical" in state.open_alerts and state.warning_since_us == 0
    assert apply(state, PATIENT, partial_critical, RULES) == []  # open already
    resolved = apply(state, PATIENT, Reading("r3", 180_000_000, NO_ALERT, 0), RULES)
    assert [(c.kind, c.resolution) for c in resolved] == [("resolved", "recovered")]
    assert state.warning_since_us is None
    # an incomplete reading that scores critical even so raises at once
    raised = apply(state, PATIENT, Reading("p4", 240_000_000, CRITICAL, 7, complete=False), RULES)
    assert [(c.kind, c.condition) for c in raised] == [("raised", "critical")]


HELD = AlertRules(
    warning_persistence_us=300 * 1_000_000,
    escalate_after=timedelta(minutes=10),
    resolve_hold_us=300 * 1_000_000,
)


def _run_held(state: PatientState, readings: list[Reading]) -> list[tuple[str, str, str]]:
    return [
        (change.kind, change.condition, change.reading.reading_key)
        for reading in readings
        for change in apply(state, PATIENT, reading, HELD)
    ]


def test_an_alert_resolves_only_once_the_patient_has_been_calm_for_the_hold():
    state = PatientState()
    # critical, then calm from r1 (60 s): r6 (360 s) is the first reading 300 s into the calm
    changes = _run_held(state, _readings([CRITICAL] + [NO_ALERT] * 7))
    assert changes == [("raised", "critical", "r0"), ("resolved", "critical", "r6")]


def test_a_reading_back_at_the_level_restarts_the_hold_and_a_partial_one_neither_starts_nor_ends():
    state = PatientState()
    levels = [CRITICAL, NO_ALERT, NO_ALERT, CRITICAL] + [NO_ALERT] * 5
    changes = _run_held(state, _readings(levels))
    assert changes == [("raised", "critical", "r0")]  # calm from r4 (240 s) to r8 (480 s) only
    assert state.calm_since_us == {"critical": 4 * 60 * 1_000_000}
    apply(state, PATIENT, Reading("p", 10 * 60 * 1_000_000, NO_ALERT, 0, complete=False), HELD)
    assert state.calm_since_us == {"critical": 4 * 60 * 1_000_000} and state.open_alerts
    changes = _run_held(state, _readings([NO_ALERT], start=11))
    assert changes == [("resolved", "critical", "r11")]


def test_a_score_swinging_across_7_every_30_s_for_10_minutes_makes_one_alert():
    swings = [CRITICAL if (second // 30) % 2 else WARNING for second in range(600)]
    held = _run_held(PatientState(), _readings(swings, every_seconds=1))
    assert held == [("raised", "critical", "r30")]
    # without the hold, one critical alert per swing
    unheld = _run(PatientState(), _readings(swings, every_seconds=1))
    assert [kind for kind, condition, *_ in unheld if condition == "critical"].count("raised") == 10


def test_lateness_is_each_devices_own():
    """A device whose clock runs 10 minutes ahead does not make another device's readings late."""
    state = PatientState()
    ahead = Reading("a1", 600_000_000, NO_ALERT, 0, device_id="MON-A")
    assert apply(state, PATIENT, ahead, RULES) == []
    on_time = Reading("b1", 60_000_000, CRITICAL, 8, device_id="MON-B")
    assert [(c.kind, c.condition) for c in apply(state, PATIENT, on_time, RULES)] == [
        ("raised", "critical")
    ]  # fmt: skip
    # the same device's older reading is late
    assert is_late(state, Reading("a0", 500_000_000, CRITICAL, 8, device_id="MON-A"))
    assert not is_late(state, Reading("b2", 61_000_000, CRITICAL, 8, device_id="MON-B"))


def test_a_held_back_file_s_late_readings_may_raise_but_never_calm():
    """A file put by because its scoring failed is scored once mended, after newer readings of
    its device: its readings are late, yet nobody saw them. A critical one raises; a calm one
    resolves nothing. Any other late reading moves nothing."""
    minute = 60_000_000
    state = PatientState()
    apply(state, PATIENT, Reading("n1", 610 * minute, NO_ALERT, 0, device_id="MON-A"), HELD)
    late_critical = Reading("o1", 600 * minute, CRITICAL, 8, device_id="MON-A")
    assert is_late(state, late_critical)
    assert apply(state, PATIENT, late_critical, HELD) == []  # late: moves nothing
    held = Reading("o1", 600 * minute, CRITICAL, 8, device_id="MON-A", held_back=True)
    assert [(c.kind, c.condition) for c in apply(state, PATIENT, held, HELD)] == [
        ("raised", "critical")
    ]  # fmt: skip
    assert state.last_scored_us["MON-A"] == 610 * minute  # the device's newest stays
    calm = [
        Reading(f"o{m}", (600 + m) * minute, NO_ALERT, 0, device_id="MON-A", held_back=True)
        for m in range(2, 10)
    ]
    assert [c for reading in calm for c in apply(state, PATIENT, reading, HELD)] == []
    assert "critical" in state.open_alerts and state.calm_since_us == {}


def test_another_devices_delayed_backlog_may_raise_but_never_calms_the_patient():
    """Device A raises critical at 10:00; device B, offline since 09:30, uploads calm readings
    from 09:30 on: they resolve nothing and start no hold (newer readings have spoken), though a
    critical one among them would still raise."""
    state = PatientState()
    minute = 60_000_000
    critical = Reading("a1", 600 * minute, CRITICAL, 8, device_id="MON-A")
    assert [c.kind for c in apply(state, PATIENT, critical, HELD)] == ["raised"]
    backlog = [
        Reading(f"b{m}", (570 + m) * minute, NO_ALERT, 0, device_id="MON-B") for m in range(30)
    ]
    assert [c for reading in backlog for c in apply(state, PATIENT, reading, HELD)] == []
    assert state.calm_since_us == {} and "critical" in state.open_alerts
    # B's readings move on from 10:00: calm from then on counts
    on_time = [
        Reading(f"c{m}", (600 + m) * minute, NO_ALERT, 0, device_id="MON-B") for m in range(1, 7)
    ]
    changes = [
        (c.kind, c.reading.reading_key) for r in on_time for c in apply(state, PATIENT, r, HELD)
    ]
    assert changes == [("resolved", "c6")]  # 10:01 to 10:06: the 300 s hold
