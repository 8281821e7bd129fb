"""Each vital classified on its own (monitoring/vital_validity.py, seeds/vital_sign_limits.csv),
by the vitals processor running as its own process: a heart rate of 0 raises a critical "verify
patient now" alert within seconds with the reading's other vitals scored; an SpO2 of -1 is an
artefact, counted, alerting no one; neither reading is lost."""

from __future__ import annotations

import json
import math
import random
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from demo.ward_vitals import drop, patient_on, reading
from monitoring import alert_rules, vital_validity
from monitoring.alert_rules import AlertRules, PatientState, Reading
from tests.monitoring.live import ProcessorProcess, WebhookSink, query, wait_until, write_config

ASYSTOLE_BED, PROBE_OFF_BED, CALM_BED = 3, 4, 5
AT = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)


def test_limits_classify_each_vital_on_its_own():
    limits = vital_validity.load_limits()
    classified = vital_validity.classify(
        {
            "heart_rate_bpm": np.array([0, 400, 72, 72, np.nan, 72, 72]),
            "systolic_mmhg": np.array([120, 120, 60, 45, 120, 40, 85]),
            "diastolic_mmhg": np.array([80, 80, 80, 30, 80, 999, np.nan]),
            "oxygen_saturation_pct": np.array([97, -1, 25, 97, 97, 97, 97]),
        },
        limits,
    )
    assert [list(names) for names in classified.extreme_names()] == [
        ["heart_rate_bpm"], [], ["oxygen_saturation_pct"], ["systolic_mmhg"], [],
        ["systolic_mmhg"], [],
    ]  # fmt: skip
    # a diastolic sentinel (999) is its own artefact and takes no systolic with it
    assert [list(names) for names in classified.artefact_names()] == [
        [], ["heart_rate_bpm", "oxygen_saturation_pct"], ["systolic_mmhg", "diastolic_mmhg"], [],
        [], ["diastolic_mmhg"], [],
    ]  # fmt: skip
    # an artefact is no measurement: NaN from here on; an extreme value is kept
    assert classified.values["heart_rate_bpm"][0] == 0
    assert math.isnan(classified.values["heart_rate_bpm"][1])
    assert math.isnan(classified.values["diastolic_mmhg"][2])
    assert math.isnan(classified.values["heart_rate_bpm"][4])  # missing stays missing


def test_a_limits_file_with_a_value_that_is_not_a_number_is_refused_by_line(tmp_path):
    path = tmp_path / "limits.csv"
    path.write_text(
        "vital,unit,artefact_below,artefact_above,extreme_below,extreme_above,source\n"
        "heart_rate_bpm,/min,0,350,20,250,x\n"
        "systolic_mmhg,mmHg,0,,50,250,x\n"
    )
    with pytest.raises(ValueError, match=r"limits.csv: line 3: each limit must be a number"):
        vital_validity.load_limits(path)


def _reading(key: str, second: int, score: int, extreme: tuple[str, ...] = ()) -> Reading:
    level = 2 if score >= 7 else 1 if score >= 5 else 0
    return Reading(key, second * 1_000_000, level, score, True, extreme)


def test_an_extreme_value_raises_at_once_whatever_is_open_and_resolves_without_one():
    rules = AlertRules(warning_persistence_us=300_000_000, escalate_after=None)
    state = PatientState()
    critical = alert_rules.apply(state, "p", _reading("r1", 0, 8), rules)
    assert [(c.kind, c.condition) for c in critical] == [("raised", "critical")]
    extreme = alert_rules.apply(state, "p", _reading("r2", 1, 8, ("heart_rate_bpm",)), rules)
    assert [(c.kind, c.condition) for c in extreme] == [("raised", "extreme")]
    # not raised again while open
    assert alert_rules.apply(state, "p", _reading("r3", 2, 8, ("heart_rate_bpm",)), rules) == []
    calm = alert_rules.apply(state, "p", _reading("r4", 3, 0), rules)
    assert sorted((c.kind, c.condition) for c in calm) == [
        ("resolved", "critical"), ("resolved", "extreme")
    ]  # fmt: skip


@pytest.fixture(scope="module")
def scored(test_warehouse, tmp_path_factory):
    """One micro-batch: a patient in asystole, one whose probe reads -1, one calm; (the file's
    drop time, the webhook's deliveries)."""
    folder = tmp_path_factory.mktemp("validity")
    config = write_config(folder, settle_seconds=0, poll_seconds=0.05)
    rng = random.Random(5)
    lines = []
    for bed in (ASYSTOLE_BED, PROBE_OFF_BED, CALM_BED):
        values = reading(rng, bed, AT, severity=0)
        if bed == ASYSTOLE_BED:
            values["measurements"]["heart_rate"] = 0
        if bed == PROBE_OFF_BED:
            values["measurements"]["oxygen_saturation"] = -1
        lines.append(json.dumps(values))
    with WebhookSink() as sink:
        processor = ProcessorProcess(config, sink.url, folder / "processor.log")
        processor.start()
        try:
            time.sleep(2)  # started and watching
            processor.assert_alive()
            dropped_at = time.time()
            drop(
                test_warehouse.landing_dir / "vitals",
                f"vitals_{AT:%Y%m%dT%H%M%S}_00001.ndjson",
                "\n".join(lines) + "\n",
            )
            wait_until(lambda: sink.of_kind("raised"), 30, "the extreme alert's notification")
            wait_until(
                lambda: query(
                    test_warehouse.warehouse, "monitor",
                    "select 1 from monitoring.processed_files where new_readings = 3",
                ),
                30, "the file scored",
            )  # fmt: skip
            time.sleep(1)  # anything else it would raise or send
        finally:
            processor.stop()
        return dropped_at, list(sink.deliveries)


def _by_patient(warehouse, statement: str) -> dict[str, tuple]:
    rows = query(warehouse, warehouse.admin_user, statement)
    return {patient: tuple(rest) for patient, *rest in rows}


def test_a_heart_rate_of_0_raises_a_critical_verify_patient_alert_within_5_s(
    test_warehouse, scored
):
    dropped_at, deliveries = scored
    warehouse = test_warehouse.warehouse
    alerts = query(
        warehouse, warehouse.admin_user,
        "select k.patient_id, a.condition, a.extreme_vitals, a.news2_score, a.news2_parts,"
        " a.raised_at from monitoring.alerts as a join monitoring.patient_keys as k"
        " using (patient_key) order by a.recorded_at",
    )  # fmt: skip
    print("alerts:", alerts)
    [(patient, condition, extreme, score, parts, raised_at)] = alerts
    assert (patient, condition, extreme) == (
        patient_on(ASYSTOLE_BED),
        "extreme",
        ["heart_rate_bpm"],
    )
    assert raised_at == AT
    # its other vitals were scored: respiration, SpO2, pressure and temperature all have a part
    assert parts["heart_rate_bpm"] == 3 and score == 3
    assert all(parts[name] == 0 for name in parts if name != "heart_rate_bpm"), parts
    [delivery] = deliveries
    print("notification:", delivery.message)
    assert delivery.message["severity"] == "critical"
    assert delivery.message["action"] == "verify patient now"
    assert delivery.message["extreme_vitals"] == ["heart_rate_bpm"]
    print(f"landing to notification: {delivery.received_at - dropped_at:.2f} s")
    assert delivery.received_at - dropped_at < 5, delivery.received_at - dropped_at


def test_an_spo2_of_minus_1_is_an_artefact_counted_and_alerting_no_one(test_warehouse, scored):
    warehouse = test_warehouse.warehouse
    readings = _by_patient(
        warehouse,
        "select k.patient_id, r.oxygen_saturation_pct, r.heart_rate_bpm, r.artefact_vitals,"
        " r.extreme_vitals, r.news2_complete from monitoring.readings as r"
        " join monitoring.patient_keys as k using (patient_key)",
    )
    print("readings:", readings)
    assert readings[patient_on(PROBE_OFF_BED)][0] is None
    assert readings[patient_on(PROBE_OFF_BED)][2:] == (["oxygen_saturation_pct"], [], False)
    assert readings[patient_on(ASYSTOLE_BED)][1:] == (0, [], ["heart_rate_bpm"], True)
    assert readings[patient_on(CALM_BED)][2:] == ([], [], True)
    [(artefacts,)] = query(
        warehouse, "clinical_ops", "select artefact_values from monitoring.processor_status"
    )
    assert artefacts == 1
    raised_for = {
        patient
        for (patient,) in query(
            warehouse,
            warehouse.admin_user,
            "select k.patient_id from monitoring.alerts join monitoring.patient_keys as k"
            " using (patient_key)",
        )
    }
    assert patient_on(PROBE_OFF_BED) not in raised_for


def test_neither_reading_is_lost(test_warehouse, scored):
    [(received, loaded, quarantined)] = query(
        test_warehouse.warehouse, "steward",
        "select rows_received, rows_loaded, rows_quarantined from audit.file_ledger"
        " where source = 'vitals'",
    )  # fmt: skip
    assert (received, loaded, quarantined) == (3, 3, 0)
