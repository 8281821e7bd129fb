"""The vitals processor running as its own process on a throwaway warehouse: a ward's micro-batches
dropped into landing, deteriorating patients raising alerts that reach a webhook, escalation,
acknowledgement, recovery, and what each role may read.

The ward's story runs in stages, each a module fixture that keeps what its test asserts on (the
first critical alerts, their escalation, every file, a file sent again), each stage after the one
before: every test runs alone or in any order."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from common import settings
from demo.vitals_files import WARDS
from demo.ward_vitals import Deterioration, drop, micro_batches, patient_on
from monitoring.alerts import NotAcknowledged, acknowledge
from tests.monitoring.live import (
    ProcessorProcess,
    WebhookSink,
    processed_files,
    query,
    wait_for_cycles,
    wait_until,
    write_config,
)
from warehouse.phi_scan import IdentifierIndex, raw_identifiers

BEDS = 30
ESCALATE_AFTER = 8
# bed 7: warning from 30 s, critical from 60 s, recovered at 120 s; bed 13 critical from 60 s on;
# bed 21 at warning level from the start (persistence set to 60 s for this test)
PLANS = (
    Deterioration(7, warning_at=30, critical_at=60, recovered_at=120),
    Deterioration(13, warning_at=40, critical_at=60),
    Deterioration(21, warning_at=0),
)
BATCHES = list(micro_batches(BEDS, files=30, seconds_per_file=5, deteriorating=PLANS))
FIRST_CRITICAL_FILE = 12  # seconds 60-64
RESOLVE_HOLD = 10  # an alert resolves once the patient has been calm this long


@pytest.fixture(scope="module")
def live(test_warehouse, tmp_path_factory):
    folder = tmp_path_factory.mktemp("processor")
    config = write_config(
        folder,
        settle_seconds=0,
        poll_seconds=0.05,
        alerts={
            "warning_persistence_seconds": 60,
            "escalate_after_seconds": ESCALATE_AFTER,
            "resolve_hold_seconds": RESOLVE_HOLD,
        },
    )
    with WebhookSink() as sink:
        processor = ProcessorProcess(config, sink.url, folder / "processor.log")
        processor.start()
        try:
            yield test_warehouse, sink, processor
        finally:
            assert processor.stop() == 0, processor.log.read_text()[-3000:]


def _drop(index: int):
    name, text = BATCHES[index]
    return drop(settings.LANDING_DIR / "vitals", name, text)


def _alert(tw, bed: int, condition: str) -> tuple | None:
    rows = query(
        tw.warehouse,
        "clinical_ops",
        """
        select alert_key::text, ward, room, news2_score, news2_parts, raised_at, escalated_at,
            acknowledged_by, acknowledged_at, resolved_at, resolution, patient_key::text
        from monitoring.alerts where room = %s and condition = %s
        """,
        (f"{200 + bed}", condition),
    )
    return rows[0] if rows else None


@dataclass
class FirstCriticals:
    delivered_before: list  # what the webhook had before the first critical reading
    landed_at: float
    raised: dict  # room: the raised alert's delivery
    bed_7: tuple  # its critical alert (_alert's columns)
    bed_21_warning: tuple


@pytest.fixture(scope="module")
def first_criticals(live) -> FirstCriticals:
    """The first minute of readings, then the file with the first critical readings."""
    tw, sink, _ = live
    for index in range(FIRST_CRITICAL_FILE):
        _drop(index)
    wait_until(lambda: processed_files(tw.warehouse) == FIRST_CRITICAL_FILE, 60, "12 files")
    delivered_before = list(sink.deliveries)
    landed = _drop(FIRST_CRITICAL_FILE).stat().st_mtime
    wait_until(lambda: len(sink.of_kind("raised")) >= 3, 60, "the critical alerts' notifications")
    return FirstCriticals(
        delivered_before=delivered_before,
        landed_at=landed,
        raised={d.message["room"]: d for d in sink.of_kind("raised")},
        bed_7=_alert(tw, 7, "critical"),
        bed_21_warning=_alert(tw, 21, "warning"),
    )


def test_a_deteriorating_patient_raises_a_critical_alert_that_reaches_the_webhook(
    live, first_criticals
):
    tw = live[0]
    # bed 7 at warning level for 30 s, bed 21 for 59 s: too short
    assert first_criticals.delivered_before == []
    raised = first_criticals.raised
    assert set(raised) == {"207", "213", "221"}
    took = raised["207"].received_at - first_criticals.landed_at
    print(f"\nfile landed -> critical alert notified: {took:.2f} s")

    key, ward, room, score, parts, raised_at, *_, patient_key = first_criticals.bed_7
    assert (ward, room) == (WARDS[7 % len(WARDS)], "207") and score >= 7
    assert parts["respiratory_rate_per_min"] == 3 and set(parts) == {
        "respiratory_rate_per_min", "oxygen_saturation_pct", "systolic_mmhg", "heart_rate_bpm",
        "temperature_c", "consciousness", "supplemental_oxygen",
    }  # fmt: skip
    # the demo's devices send neither: assumed alert and on air
    assert parts["consciousness"] == parts["supplemental_oxygen"] == 0
    assert raised_at.isoformat() == "2024-03-15T14:01:00+00:00"
    [(monitoring_key,)] = query(
        tw.warehouse,
        "monitor",
        "select patient_key::text from monitoring.patient_keys where patient_id = %s",
        (patient_on(7),),
    )
    assert patient_key == monitoring_key
    # not the de-identified layer's key: no one is keyed in the crosswalk by a reading
    [(crosswalk,)] = query(
        tw.warehouse, "transformer", "select to_regclass('crosswalk.patient_crosswalk')::text"
    )
    assert crosswalk is None
    # the warning waited its 60 s of persistence: raised by the reading at 60 s, not before
    assert first_criticals.bed_21_warning[5].isoformat() == "2024-03-15T14:01:00+00:00"

    message = raised["207"].message
    assert message["alert"] == key and message["condition"] == "critical"
    assert (message["ward"], message["room"], message["news2_score"]) == (ward, room, score)
    text = json.dumps(message)
    assert patient_on(7) not in text and patient_key not in text and "2024" not in text
    index = IdentifierIndex(raw_identifiers(tw.warehouse))
    assert index.classes_in(text) == set()


@dataclass
class Escalations:
    first: list  # the escalations' deliveries when the first arrived
    rooms: list[str]  # the rooms escalated, once another cycle went by
    bed_13: tuple  # its critical alert, acknowledged by the charge nurse in time
    bed_7: tuple  # its critical alert, escalated, then acknowledged with the command
    acknowledged_again: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def escalations(live, first_criticals) -> Escalations:
    """Bed 13's alert acknowledged at once; the others escalate; bed 7's is acknowledged then,
    with the command, and once more by someone else."""
    tw, sink, _ = live
    acknowledge(tw.warehouse, _alert(tw, 13, "critical")[0], "charge nurse")
    first = wait_until(
        lambda: sink.of_kind("escalated"), ESCALATE_AFTER + 30, "an escalation notification"
    )
    wait_until(lambda: len(sink.of_kind("escalated")) >= 2, 30, "the second escalation")
    wait_for_cycles(tw.warehouse, 2)  # another cycle or more: nothing else escalates
    rooms = sorted(d.message["room"] for d in sink.of_kind("escalated"))

    command = [sys.executable, "-m", "cli", "alerts", "acknowledge"]
    key_7 = _alert(tw, 7, "critical")[0]
    subprocess.run(
        [*command, key_7, "--by", "rapid response team"], cwd=settings.PROJECT_ROOT, check=True
    )
    again = subprocess.run(
        [*command, key_7, "--by", "someone else"],
        check=False,
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    return Escalations(
        first=first,
        rooms=rooms,
        bed_13=_alert(tw, 13, "critical"),
        bed_7=_alert(tw, 7, "critical"),
        acknowledged_again=again,
    )


def test_an_unacknowledged_alert_escalates_and_an_acknowledged_one_does_not(live, escalations):
    tw = live[0]
    assert escalations.rooms == ["207", "221"], escalations.rooms  # bed 13 acknowledged in time
    assert escalations.first[0].message["kind"] == "escalated"
    assert escalations.bed_13[6] is None  # not escalated
    assert escalations.bed_7[6] is not None

    # acknowledging with the command records who and when, once
    *_, by, at, _, _, _ = escalations.bed_7
    assert by == "rapid response team" and at is not None
    again = escalations.acknowledged_again
    assert again.returncode != 0 and "acknowledged already by rapid response team" in again.stderr
    with pytest.raises(NotAcknowledged, match="no alert"):
        acknowledge(tw.warehouse, "00000000-0000-4000-8000-000000000000", "someone")


@dataclass
class EveryFile:
    bed_7: tuple
    bed_13: tuple
    alerts: list[tuple]
    delivery_keys: list[str]
    unsent: list[tuple]
    ledger: tuple  # files, received, loaded, quarantined of the vitals ledger
    scored: tuple  # readings scored, distinct reading keys
    archived: list[str]
    minute_windows: tuple  # heart rate windows, the fewest readings in one
    sliding_most: int  # the most heart rate readings in one five-minute window


@pytest.fixture(scope="module")
def every_file(live, escalations) -> EveryFile:
    """The rest of the ward's files, after the escalations."""
    tw, sink, processor = live
    for index in range(FIRST_CRITICAL_FILE + 1, len(BATCHES)):
        _drop(index)
    wait_until(lambda: processed_files(tw.warehouse) == len(BATCHES), 60, "every file")
    processor.assert_alive()
    [ledger] = query(
        tw.warehouse,
        "steward",
        "select count(*), sum(rows_received), sum(rows_loaded), sum(rows_quarantined)"
        " from audit.file_ledger where source = 'vitals'",
    )
    [scored] = query(
        tw.warehouse,
        "monitor",
        "select count(*), count(distinct reading_key) from monitoring.readings",
    )
    [minute_windows] = query(
        tw.warehouse,
        "clinical_ops",
        "select count(*), min(readings) from monitoring.vitals_minute"
        " where vital = 'heart_rate_bpm'",
    )
    [(sliding_most,)] = query(
        tw.warehouse,
        "clinical_ops",
        "select max(readings) from monitoring.vitals_sliding_5min where vital = 'heart_rate_bpm'",
    )
    return EveryFile(
        bed_7=_alert(tw, 7, "critical"),
        bed_13=_alert(tw, 13, "critical"),
        alerts=query(tw.warehouse, "clinical_ops", "select room, condition from monitoring.alerts"),
        delivery_keys=[d.idempotency_key for d in sink.deliveries],
        unsent=query(
            tw.warehouse,
            "monitor",
            "select count(*) from monitoring.notifications where sent_at is null",
        ),
        ledger=ledger,
        scored=scored,
        archived=sorted(p.name for p in (settings.ARCHIVE_DIR / "vitals").iterdir()),
        minute_windows=minute_windows,
        sliding_most=sliding_most,
    )


def test_an_alert_resolves_when_the_patient_recovers_and_is_not_raised_twice_while_open(
    every_file,
):
    *_, resolved_at, resolution, _ = every_file.bed_7
    # recovered at 14:02:00, resolved by the first reading RESOLVE_HOLD seconds later
    assert resolution == "recovered" and resolved_at.isoformat() == "2024-03-15T14:02:10+00:00"
    assert every_file.bed_13[9] is None  # still critical: still open
    # bed 13 stayed critical for 90 s, bed 21 at warning level for 150 s: one alert each
    assert sorted(every_file.alerts) == [
        ("207", "critical"), ("213", "critical"), ("221", "warning"),
    ]  # fmt: skip
    keys = every_file.delivery_keys
    assert len(keys) == len(set(keys)) == 5  # 3 raised + 2 escalated, none twice
    assert every_file.unsent == [(0,)]


def test_every_reading_is_landed_through_the_ledger_and_scored_once(every_file):
    files, received, loaded, quarantined = every_file.ledger
    assert (files, received, loaded, quarantined) == (30, 30 * 5 * BEDS, 30 * 5 * BEDS, 0)
    scored, keys = every_file.scored
    assert scored == keys == loaded
    assert every_file.archived == sorted(name for name, _ in BATCHES)
    # one-minute windows: 60 readings a bed a minute, each vital
    assert every_file.minute_windows == (BEDS * 3, 30)  # 14:00, 14:01 and the 30 s of 14:02
    assert every_file.sliding_most == 150  # the whole 150 s run within five minutes


@pytest.fixture(scope="module")
def resent(live, every_file) -> Path:
    """The last file sent again under another name, with one more reading: after every file."""
    tw = live[0]
    name, text = BATCHES[-1]
    extra = json.loads(text.splitlines()[-1])
    extra["timestamp"] = "2024-03-15T14:02:30Z"  # the next second, one bed
    resent = drop(
        settings.LANDING_DIR / "vitals", f"vitals_resent_{name}", text + json.dumps(extra) + "\n"
    )
    wait_until(lambda: processed_files(tw.warehouse) == len(BATCHES) + 1, 60, "the resent file")
    return resent


def test_a_batch_sent_again_with_one_more_reading_lands_only_that_reading(live, resent):
    tw = live[0]
    [(received, loaded, quarantined)] = query(
        tw.warehouse,
        "steward",
        "select rows_received, rows_loaded, rows_quarantined from audit.file_ledger"
        " where file_name = %s",
        (resent.name,),
    )
    assert (received, loaded, quarantined) == (5 * BEDS + 1, 1, 5 * BEDS)
    rules = query(
        tw.warehouse,
        "steward",
        "select distinct rule, reason from quarantine.rejected_records where file_name = %s",
        (resent.name,),
    )
    assert rules == [
        (
            "record_key_not_repeated",
            "record_key_not_repeated: its timestamp, device_id were landed before",
        )
    ]
    [(new_readings,)] = query(
        tw.warehouse,
        "monitor",
        "select new_readings from monitoring.processed_files where file_name = %s",
        (resent.name,),
    )
    assert new_readings == 1


def test_health_is_recorded_and_analysts_cannot_read_monitoring(live, resent):
    tw = live[0]

    def status() -> list[tuple]:
        return query(
            tw.warehouse,
            "clinical_ops",
            "select last_sequence, last_checkpoint_at, newest_reading_processed_at,"
            " files_waiting, heartbeat_at from monitoring.processor_status",
        )

    # the status is written after the cycle that committed the resent file's checkpoint
    wait_until(lambda: status()[0][0] == len(BATCHES) + 1, 30, "the status of that cycle")
    [(sequence, checkpoint_at, newest, waiting, heartbeat)] = status()
    assert sequence == len(BATCHES) + 1 and waiting == 0
    assert newest.isoformat() == "2024-03-15T14:02:30+00:00"
    assert heartbeat >= checkpoint_at
    for relation in ("monitoring.alerts", "monitoring.readings", "monitoring.processor_status"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            query(tw.warehouse, "analyst", f"select 1 from {relation}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        query(tw.warehouse, "clinical_ops", "select 1 from monitoring.readings")
