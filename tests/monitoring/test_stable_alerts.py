"""Stable alerts, by the vitals processor running as its own process: a score swinging 6-7-6-7
every 30 s for 10 minutes makes one critical alert and one notification with the hold
(`resolve_hold_seconds`); without it, the same readings make one per swing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from demo.ward_vitals import drop, patient_on
from tests.monitoring.live import (
    ProcessorProcess,
    WebhookSink,
    processed_files,
    query,
    wait_until,
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
    files = []
    for index in range(MINUTES * 60 // SWING_SECONDS):
        lines = []
        for offset in range(SWING_SECONDS):
            at = start + timedelta(seconds=index * SWING_SECONDS + offset)
            reading = {
                "device_id": f"BED_{bed:04d}",
                "patient_id": patient_on(bed),
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "measurements": SEVEN if index % 2 else SIX,
                "device_status": "OK",
                "location": {"hospital": "General Hospital", "ward": "ICU", "room": f"{bed}"},
            }
            lines.append(json.dumps(reading))
        first = start + timedelta(seconds=index * SWING_SECONDS)
        files.append((f"vitals_{first:%Y%m%dT%H%M%S}_{bed:05d}.ndjson", "\n".join(lines) + "\n"))
    return files


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
            wait_until(
                lambda: not query(
                    warehouse, "monitor",
                    "select 1 from monitoring.notifications where sent_at is null",
                ),
                30, "every notification sent",
            )  # fmt: skip
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
