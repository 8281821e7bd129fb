"""Stable alerts, by the vitals processor running as its own process: a score swinging 6-7-6-7
every 30 s for 10 minutes makes one critical alert and one notification with the hold
(`resolve_hold_seconds`); without it, the same readings make one per swing."""

from __future__ import annotations

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

# NEWS2 6: respiration 22 (2), SpO2 95 (1), systolic 124 (0), pulse 118 (2), 38.5 C (1);
# NEWS2 7: the same with a systolic of 105 (1)
SIX = {"heart_rate": 118, "blood_pressure": {"systolic": 124, "diastolic": 70},
       "temperature": 101.3, "oxygen_saturation": 95, "respiratory_rate": 22}  # fmt: skip
SEVEN = {**SIX, "blood_pressure": {"systolic": 105, "diastolic": 70}}
SWING_SECONDS, MINUTES = 30, 10


def _swinging(bed: int, start: datetime) -> list[tuple[str, str]]:
    """(name, text) of each 30 s micro-batch: one reading a second, NEWS2 6 then 7 then 6..."""
    return [
        micro_batch(bed, (
            (f"BED_{bed:04d}", start + timedelta(seconds=index * SWING_SECONDS + offset),
             SEVEN if index % 2 else SIX)
            for offset in range(SWING_SECONDS)
        ))
        for index in range(MINUTES * 60 // SWING_SECONDS)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("hold_seconds", "bed", "critical_alerts"),
    [(300, 41, 1), (0, 42, MINUTES * 60 // SWING_SECONDS // 2)],
)
def test_a_score_swinging_6_7_every_30_s_for_10_minutes_makes_one_alert_and_notification(
    test_warehouse, tmp_path, hold_seconds, bed, critical_alerts
):
    warehouse = test_warehouse.warehouse
    config = write_config(
        tmp_path, settle_seconds=0, poll_seconds=0.05,
        alerts={"resolve_hold_seconds": hold_seconds, "escalate_after_seconds": 3600},
    )  # fmt: skip
    files = _swinging(bed, datetime(2024, 7, 1, 8, 0, tzinfo=UTC) + timedelta(hours=bed))
    with WebhookSink() as sink:
        processor = ProcessorProcess(config, sink.url, tmp_path / "processor.log")
        before = processed_files(warehouse)
        processor.start()
        try:
            for name, text in files:
                drop(test_warehouse.landing_dir / "vitals", name, text)
            wait_until(lambda: processed_files(warehouse) == before + len(files), 120, "every file")
            wait_until_sent(warehouse)
        finally:
            assert processor.stop() == 0, processor.log.read_text()[-3000:]
    alerts = query(
        warehouse, warehouse.admin_user,
        "select a.condition, a.raised_at, a.resolved_at from monitoring.alerts as a"
        " join monitoring.patient_keys as k using (patient_key) where k.patient_id = %s"
        " order by a.raised_at, a.condition",
        (patient_on(bed),),
    )  # fmt: skip
    print(f"hold {hold_seconds} s:", alerts)
    critical = [alert for alert in alerts if alert[0] == "critical"]
    assert len(critical) == critical_alerts
    delivered = [d.message for d in sink.deliveries if d.message["room"] == str(bed)]
    if hold_seconds:
        assert alerts == [("critical", *critical[0][1:])] and critical[0][2] is None  # still open
        assert [(m["condition"], m["kind"]) for m in delivered] == [("critical", "raised")]


def test_a_device_clock_10_minutes_ahead_does_not_make_another_devices_readings_late(
    test_warehouse, tmp_path
):
    """Bed 43 wears two devices: MON-A's clock runs 10 minutes ahead. MON-B's critical readings,
    on time, raise a critical alert, also after a restart (which rebuilds each device's newest
    reading from the warehouse)."""
    warehouse, bed = test_warehouse.warehouse, 43
    config = write_config(tmp_path, settle_seconds=0, poll_seconds=0.05)
    now = datetime(2024, 7, 5, 10, 0, tzinfo=UTC)
    calm = {**SIX, "heart_rate": 72, "respiratory_rate": 16, "temperature": 98.4,
            "oxygen_saturation": 98}  # fmt: skip
    critical = {**SEVEN, "oxygen_saturation": 91}  # 3 for SpO2: NEWS2 9
    landing = test_warehouse.landing_dir / "vitals"
    with WebhookSink() as sink:
        for name, readings in (
            ("vitals_20240705T100000_00043.ndjson",
             [("MON-A", now + timedelta(minutes=10, seconds=s), calm) for s in range(5)]),
            ("vitals_20240705T100001_00043.ndjson",
             [("MON-B", now + timedelta(seconds=s), calm) for s in range(5)]),
            ("vitals_20240705T100010_00043.ndjson",
             [("MON-B", now + timedelta(seconds=10 + s), critical) for s in range(5)]),
        ):  # fmt: skip
            # one processor per file: each start rebuilds the state from the warehouse
            processor = ProcessorProcess(config, sink.url, tmp_path / "processor.log")
            before = processed_files(warehouse)
            processor.start()
            try:
                drop(landing, name, micro_batch(bed, readings)[1])
                wait_until(lambda before=before: processed_files(warehouse) == before + 1, 60, name)
            finally:
                assert processor.stop() == 0, processor.log.read_text()[-3000:]
    moved = query(
        warehouse, warehouse.admin_user,
        "select r.device_id, count(*) filter (where r.moves_alerts), count(*)"
        " from monitoring.readings as r join monitoring.patient_keys as k using (patient_key)"
        " where k.patient_id = %s group by r.device_id order by 1",
        (patient_on(bed),),
    )  # fmt: skip
    assert moved == [("MON-A", 5, 5), ("MON-B", 10, 10)]
    alerts = query(
        warehouse, warehouse.admin_user,
        "select a.condition, a.raised_at from monitoring.alerts as a"
        " join monitoring.patient_keys as k using (patient_key) where k.patient_id = %s",
        (patient_on(bed),),
    )  # fmt: skip
    assert alerts == [("critical", now + timedelta(seconds=10))]
