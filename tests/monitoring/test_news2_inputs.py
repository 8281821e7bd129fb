"""NEWS2 with what the hospital knows (monitoring/news2_inputs.py), by the vitals processor running
as its own process and clinical operations' `hcw news2 set` run as a person: a patient set on
oxygen, or whose device says so, with a device score of 5 reaches 7 and raises a critical alert
listing the inputs it used; a device's "air" never hides a setting's oxygen; scale 2 scores a
target of 88-92 as the chart does; a pregnancy keeps the alert and labels it; a consciousness
nobody understands is an artefact, scored as not alert."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from demo.ward_vitals import drop, patient_on
from tests.monitoring.live import (
    ProcessorProcess,
    WebhookSink,
    micro_batch,
    processed_files,
    query,
    wait_until,
    wait_until_sent,
    write_config,
)
from tests.persons import hcw, person_env

# a device score of 5: pulse 111 (2), respiration 21 (2), 38.5 C (1); SpO2 98, systolic 120 (0)
FIVE = {"heart_rate": 111, "blood_pressure": {"systolic": 120, "diastolic": 75},
        "temperature": 101.3, "oxygen_saturation": 98, "respiratory_rate": 21}  # fmt: skip
# a device score of 7 on air: the same with a systolic of 105 (1) and an SpO2 of 95 (1)
SEVEN = {**FIVE, "blood_pressure": {"systolic": 105, "diastolic": 70}, "oxygen_saturation": 95}
# all normal but an SpO2 of 89: 3 on scale 1, 0 on scale 2 on air
HYPERCAPNIC = {"heart_rate": 80, "blood_pressure": {"systolic": 125, "diastolic": 80},
               "temperature": 98.6, "oxygen_saturation": 89, "respiratory_rate": 16}  # fmt: skip

SET_ON_OXYGEN, DEVICE_ON_OXYGEN, DEVICE_SAYS_AIR, SCALE_2, PREGNANT, NOT_UNDERSTOOD = range(21, 27)
SETTINGS = {
    SET_ON_OXYGEN: ["--oxygen"],
    DEVICE_SAYS_AIR: ["--oxygen"],
    SCALE_2: ["--scale", "2", "--reason", "hypercapnic respiratory failure"],
    PREGNANT: ["--pregnant"],
}
MEASUREMENTS = {
    SET_ON_OXYGEN: FIVE,
    DEVICE_ON_OXYGEN: {**FIVE, "supplemental_oxygen": True, "consciousness": "A"},
    DEVICE_SAYS_AIR: {**FIVE, "supplemental_oxygen": "air"},
    SCALE_2: HYPERCAPNIC,
    PREGNANT: SEVEN,
    NOT_UNDERSTOOD: {**FIVE, "consciousness": "drowsy?"},
}


@pytest.fixture(scope="module")
def scored(test_warehouse, tmp_path_factory):
    """Settings recorded by the command line, then one reading per bed; the deliveries."""
    folder = tmp_path_factory.mktemp("news2_inputs")
    env = person_env(folder, test_warehouse, "clinical_ops")
    for bed, options in SETTINGS.items():
        done = hcw(env, "news2", "set", patient_on(bed), *options, "--by", "Dr Okafor")
        assert done.returncode == 0, done.stderr
    at = datetime.now(UTC) + timedelta(seconds=6)  # after every setting's valid_from (5 s on)
    config = write_config(folder, settle_seconds=0, poll_seconds=0.05)
    warehouse = test_warehouse.warehouse
    with WebhookSink() as sink:
        processor = ProcessorProcess(config, sink.url, folder / "processor.log")
        processor.start()
        try:
            time.sleep(2)
            processor.assert_alive()
            for bed, measurements in MEASUREMENTS.items():
                name, text = micro_batch(bed, [(f"BED_{bed:04d}", at, measurements)])
                drop(test_warehouse.landing_dir / "vitals", name, text)
            wait_until(lambda: processed_files(warehouse) == len(MEASUREMENTS), 60, "every file")
            wait_until_sent(warehouse)
        finally:
            assert processor.stop() == 0, processor.log.read_text()[-3000:]
        return list(sink.deliveries)


def _by_bed(warehouse, statement: str) -> dict[int, tuple]:
    rows = query(warehouse, warehouse.admin_user, statement)
    bed_of = {patient_on(bed): bed for bed in MEASUREMENTS}
    return {bed_of[patient]: tuple(rest) for patient, *rest in rows}


def _alerts(warehouse) -> dict[int, tuple]:
    return _by_bed(
        warehouse,
        "select k.patient_id, a.condition, a.news2_score, a.news2_inputs, a.news2_not_validated"
        " from monitoring.alerts as a join monitoring.patient_keys as k using (patient_key)",
    )


def _readings(warehouse) -> dict[int, tuple]:
    return _by_bed(
        warehouse,
        "select k.patient_id, r.news2_score, r.news2_level, r.consciousness, r.on_oxygen,"
        " r.spo2_scale, r.news2_assumed, r.artefact_vitals, r.news2_not_validated, r.news2_parts"
        " from monitoring.readings as r join monitoring.patient_keys as k using (patient_key)",
    )


def test_a_patient_set_on_oxygen_with_a_device_score_of_5_raises_a_critical_alert_of_7(
    test_warehouse, scored
):
    alerts = _alerts(test_warehouse.warehouse)
    print("alerts:", alerts)
    condition, score, inputs, not_validated = alerts[SET_ON_OXYGEN]
    assert (condition, score, not_validated) == ("critical", 7, None)
    assert inputs == {
        "consciousness": {"value": "A", "from": "assumed"},
        "supplemental_oxygen": {"value": "oxygen", "from": "patient setting"},
        "spo2_scale": {"value": 1, "from": "assumed"},
    }
    [message] = [d.message for d in scored if d.message["room"] == str(SET_ON_OXYGEN)]
    print("notification:", message)
    assert (message["condition"], message["news2_score"]) == ("critical", 7)
    assert message["news2_inputs"] == inputs and message["label"] is None
    assert message["news2_parts"]["supplemental_oxygen"] == 2


def test_the_device_saying_oxygen_raises_it_too_and_a_device_s_air_never_hides_a_setting(
    test_warehouse, scored
):
    warehouse = test_warehouse.warehouse
    alerts = _alerts(warehouse)
    condition, score, inputs, _ = alerts[DEVICE_ON_OXYGEN]
    assert (condition, score) == ("critical", 7)
    assert inputs["supplemental_oxygen"] == {"value": "oxygen", "from": "device"}
    assert inputs["consciousness"] == {"value": "A", "from": "device"}
    # set on oxygen, the device says air (a default, perhaps): the riskier wins, on oxygen, 7
    condition, score, inputs, _ = alerts[DEVICE_SAYS_AIR]
    assert (condition, score) == ("critical", 7)
    assert inputs["supplemental_oxygen"] == {"value": "oxygen", "from": "patient setting"}


def test_scale_2_scores_an_spo2_of_89_as_the_chart_does(test_warehouse, scored):
    score, level, _, on_oxygen, scale, assumed, *_, parts = _readings(test_warehouse.warehouse)[
        SCALE_2
    ]
    assert (score, level, on_oxygen, scale) == (0, "none", False, 2)
    assert parts["oxygen_saturation_pct"] == 0  # 3 on scale 1
    assert assumed == ["consciousness", "supplemental_oxygen"]


def test_a_pregnant_patient_keeps_her_alert_labelled_not_validated(test_warehouse, scored):
    condition, score, _, not_validated = _alerts(test_warehouse.warehouse)[PREGNANT]
    assert (condition, score, not_validated) == ("critical", 7, "pregnant")
    [message] = [d.message for d in scored if d.message["room"] == str(PREGNANT)]
    assert message["label"] == "NEWS2 not validated for this patient: use PEWS / MEOWS"
    assert "pregnan" not in str(message)  # why is nobody's email


def test_a_consciousness_not_understood_is_an_artefact_scored_as_not_alert(test_warehouse, scored):
    # "drowsy?" is no ACVPU word: the device saw something other than alert; 5 + 3 = 8
    reading = _readings(test_warehouse.warehouse)[NOT_UNDERSTOOD]
    assert reading[:4] == (8, "critical", "C", False)
    assert reading[5:7] == (["supplemental_oxygen", "spo2_scale"], ["consciousness"])


def test_a_setting_holds_from_now_or_later_and_is_never_rewritten(test_warehouse, scored, tmp_path):
    import psycopg

    env = person_env(tmp_path, test_warehouse, "clinical_ops")
    past = hcw(env, "news2", "set", patient_on(30), "--oxygen", "--by", "x",
               "--from", "2020-01-01T00:00")  # fmt: skip
    assert past.returncode != 0
    assert "never from the past" in past.stderr
    nothing = hcw(env, "news2", "set", patient_on(30), "--by", "x")
    assert nothing.returncode != 0 and "say what to set" in nothing.stderr
    shown = hcw(env, "news2", "show", patient_on(SCALE_2))
    assert shown.returncode == 0 and "scale 2" in shown.stdout, shown.stderr
    warehouse = test_warehouse.warehouse
    for role in ("clinical_ops", "monitor"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            query(warehouse, role, "update monitoring.news2_settings set on_oxygen = false")
