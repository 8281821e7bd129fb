"""The vitals processor's first start after a restore or an upgrade (monitoring/baseline.py), as
its own process: readings older than the horizon (15 minutes) are scored as history, their alerts
recorded without a notification; a critical reading taken 5 minutes before the start alerts as
usual; the health row says so; the next start is an ordinary one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from demo.ward_vitals import drop, patient_on
from monitoring import baseline, health
from tests.monitoring.live import (
    ProcessorProcess,
    WebhookSink,
    execute,
    micro_batch,
    processed_files,
    query,
    wait_until,
    wait_until_sent,
    write_config,
)

# NEWS2 9: respiration 26 (3), SpO2 91 (3), systolic 105 (1), pulse 118 (2), 36.8 C (0)
CRITICAL = {"heart_rate": 118, "blood_pressure": {"systolic": 105, "diastolic": 70},
            "temperature": 98.2, "oxygen_saturation": 91, "respiratory_rate": 26}  # fmt: skip
HOURS_AGO_BED, FIVE_MINUTES_AGO_BED, AFTER_BED, STILL_CRITICAL_BED = 51, 52, 53, 54


def _file(bed: int, at: datetime) -> tuple[str, str]:
    """Five critical readings of `bed`, a second apart from `at`."""
    return micro_batch(
        bed, ((f"BED_{bed:04d}", at + timedelta(seconds=s), CRITICAL) for s in range(5))
    )


def _run_processor(warehouse, landing, config, log, files, until=None) -> list:
    """Start the processor, drop `files`, wait until each is scored and notified (and `until`
    holds); the webhook's deliveries."""
    with WebhookSink() as sink:
        processor = ProcessorProcess(config, sink.url, log)
        before = processed_files(warehouse)
        for name, text in files:
            drop(landing, name, text)  # waiting before the start, as after a restore
        processor.start()
        try:
            wait_until(lambda: processed_files(warehouse) == before + len(files), 60, "every file")
            wait_until_sent(warehouse)
            wait_until(
                lambda: query(
                    warehouse, "monitor",
                    "select 1 from monitoring.baseline_requests where finished_at is null",
                ) == [],
                30, "the baseline over",
            )  # fmt: skip
            if until is not None:
                wait_until(until, 30, "what the test waits for")
        finally:
            assert processor.stop() == 0, processor.log.read_text()[-3000:]
        return list(sink.deliveries)


def _alerts(warehouse, bed: int) -> list[tuple]:
    return query(
        warehouse, warehouse.admin_user,
        "select a.condition, a.raised_in_baseline, a.escalated_at from monitoring.alerts as a"
        " join monitoring.patient_keys as k using (patient_key) where k.patient_id = %s",
        (patient_on(bed),),
    )  # fmt: skip


@pytest.fixture(scope="module")
def after_restore(test_warehouse, tmp_path_factory):
    """What `hcw restore` leaves (its request), then the first start with an hour-old and a
    5-minute-old critical patient waiting; then a second start, with a critical patient whose
    readings are an hour old too."""
    warehouse = test_warehouse.warehouse
    folder = tmp_path_factory.mktemp("baseline")
    # escalation due at once: a baseline's alerts must not escalate even so
    config = write_config(folder, settle_seconds=0, poll_seconds=0.05,
                          alerts={"escalate_after_seconds": 0})  # fmt: skip
    landing = test_warehouse.landing_dir / "vitals"
    baseline.request(warehouse, "restore")
    now = datetime.now(UTC).replace(microsecond=0)
    first = _run_processor(
        warehouse, landing, config, folder / "first.log",
        [_file(HOURS_AGO_BED, now - timedelta(hours=1)),
         _file(STILL_CRITICAL_BED, now - timedelta(minutes=40)),
         _file(FIVE_MINUTES_AGO_BED, now - timedelta(minutes=5)),
         _file(STILL_CRITICAL_BED, now - timedelta(minutes=4))],
    )  # fmt: skip
    health_after_first = health.read_health(warehouse)
    second = _run_processor(
        warehouse, landing, config, folder / "second.log",
        [_file(AFTER_BED, now - timedelta(hours=1))],
    )  # fmt: skip
    return first, health_after_first, second, (folder / "first.log").read_text()


def test_after_a_restore_history_alerts_without_notifying_and_a_recent_critical_alerts(
    test_warehouse, after_restore
):
    first, health_row, _, log = after_restore
    warehouse = test_warehouse.warehouse
    print("hour ago:", _alerts(warehouse, HOURS_AGO_BED))
    print("5 minutes ago:", _alerts(warehouse, FIVE_MINUTES_AGO_BED))
    assert _alerts(warehouse, HOURS_AGO_BED) == [("critical", True, None)]  # never escalated
    [(condition, in_baseline, escalated_at)] = _alerts(warehouse, FIVE_MINUTES_AGO_BED)
    assert (condition, in_baseline) == ("critical", False) and escalated_at is not None
    # critical 40 minutes ago (history) and still 4 minutes ago: the history alert gives way to
    # one that pages, not left open hiding the patient of now
    still = query(
        warehouse, warehouse.admin_user,
        "select a.raised_in_baseline, a.resolution, a.escalated_at is not null"
        " from monitoring.alerts as a join monitoring.patient_keys as k using (patient_key)"
        " where k.patient_id = %s order by a.raised_at",
        (patient_on(STILL_CRITICAL_BED),),
    )  # fmt: skip
    print("still critical:", still)
    assert still == [(True, "superseded", False), (False, None, True)]
    notified_rooms = {(d.message["room"], d.message["kind"]) for d in first}
    assert notified_rooms == {
        (str(bed), kind)
        for bed in (FIVE_MINUTES_AGO_BED, STILL_CRITICAL_BED)
        for kind in ("raised", "escalated")
    }
    assert "baseline (restore): readings taken before" in log
    assert health_row.baseline_started_at is not None
    assert health_row.baseline_finished_at is not None
    assert health_row.baseline_readings_as_history == 10
    [(reason, readings, alerts)] = query(
        warehouse, "steward",
        "select reason, readings_as_history, alerts_without_notification"
        " from monitoring.baseline_requests where reason = 'restore'",  # the upgrade test's: its own
    )  # fmt: skip
    assert (reason, readings, alerts) == ("restore", 10, 2)


def test_the_next_start_is_an_ordinary_one(test_warehouse, after_restore):
    *_, second, _ = after_restore
    assert _alerts(test_warehouse.warehouse, AFTER_BED)[0][:2] == ("critical", False)
    assert (str(AFTER_BED), "raised") in {(d.message["room"], d.message["kind"]) for d in second}


def test_a_start_with_another_scoring_version_is_an_upgrade_and_takes_a_baseline(
    test_warehouse, after_restore, tmp_path
):
    warehouse = test_warehouse.warehouse
    execute(warehouse, warehouse.admin_user,
            "update monitoring.processor_status set scoring_version = 'an older one'")  # fmt: skip
    config = write_config(tmp_path, settle_seconds=0, poll_seconds=0.05)

    def upgraded() -> bool:
        return bool(query(
            warehouse, "steward",
            "select 1 from monitoring.baseline_requests"
            " where reason = 'upgrade' and finished_at is not null",
        ))  # fmt: skip

    landing = test_warehouse.landing_dir / "vitals"
    _run_processor(warehouse, landing, config, tmp_path / "p.log", [], until=upgraded)
    assert query(
        warehouse, "steward",
        "select reason, finished_at is not null from monitoring.baseline_requests"
        " order by request_id",
    ) == [("restore", True), ("upgrade", True)]  # fmt: skip
    [(version,)] = query(
        warehouse, "steward", "select scoring_version from monitoring.processor_status"
    )
    assert version == baseline.SCORING_VERSION
