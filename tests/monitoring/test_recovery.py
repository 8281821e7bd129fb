"""Crash and replay: the processor killed (SIGKILL) again and again mid-stream ends where an
uninterrupted run ends, and a replay of landed readings gives the same aggregates and alerts."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from common import settings
from demo.ward_vitals import Deterioration, drop, micro_batches
from ingestion.file_source import land
from ingestion.sources.vitals_files import VITALS_FILES
from tests.monitoring.live import (
    ProcessorProcess,
    WebhookSink,
    execute,
    processed_files,
    query,
    snapshot,
    wait_until,
    write_config,
)
from warehouse.connection import Warehouse
from warehouse.throwaway import throwaway_warehouse

# the processor killed again and again
pytestmark = pytest.mark.slow

BEDS = 20
PLANS = (
    Deterioration(3, warning_at=20, critical_at=45, recovered_at=100),
    Deterioration(9, warning_at=0),
    Deterioration(16, warning_at=10, critical_at=30, recovered_at=70),
)
BATCHES = list(micro_batches(BEDS, files=40, seconds_per_file=5, deteriorating=PLANS))
KILLS = 6


@dataclass
class Run:
    warehouse: Warehouse
    snapshot: dict[str, list[tuple]]
    notifications: list[tuple[str, str, str]]  # (room, condition, kind), as delivered
    keys_delivered: list[str]
    config: Path  # the processor's settings, which a replay of its readings uses too


def _run(tmp_path, template, name: str, kill: bool):
    """Land and score every batch, killing the processor KILLS times on the way if `kill`, on a
    warehouse copied from `template`."""
    config = write_config(
        tmp_path,
        settle_seconds=0,
        poll_seconds=0.05,
        max_bytes_per_cycle=1,  # one file a cycle: many checkpoints to fall between
        # beds 16 and 3 recover at 70 s and 100 s: their alerts resolve 10 s later, so a kill
        # can fall inside a hold, which a restart rebuilds from the readings
        alerts={
            "warning_persistence_seconds": 60,
            "escalate_after_seconds": 3600,
            "resolve_hold_seconds": 10,
        },
    )
    rng = random.Random(5)
    with WebhookSink() as sink, throwaway_warehouse(tmp_path / name, template) as warehouse:
        processor = ProcessorProcess(config, sink.url, tmp_path / f"{name}.log")
        landing = settings.LANDING_DIR / "vitals"
        if kill:
            # a processor that died right after landing the first three files, before scoring
            first = [drop(landing, *batch) for batch in BATCHES[:3]]
            land(VITALS_FILES, warehouse, "vitals_processor__crashed", first)
        processor.start()
        for batch in BATCHES[3 if kill else 0 :]:
            drop(landing, *batch)
        for _ in range(KILLS if kill else 0):
            # somewhere in the next few files: landing, scoring or sending
            target = processed_files(warehouse) + rng.randint(1, 4)
            wait_until(
                lambda target=target: processed_files(warehouse) >= target, 120, f"{target} files"
            )
            time.sleep(rng.uniform(0, 0.4))  # about one cycle: landing, scoring or sending
            processor.kill()
            processor.start()
        wait_until(lambda: processed_files(warehouse) == len(BATCHES), 180, "every file")
        wait_until(
            lambda: (
                not query(
                    warehouse,
                    "monitor",
                    "select 1 from monitoring.notifications where sent_at is null",
                )
            ),
            30,
            "every notification sent",
        )
        assert processor.stop() == 0, processor.log.read_text()[-3000:]
        log = processor.log.read_text()
        print(f"\n{name}: {log.count('watching')} starts, {log.count('resuming')} resumed files"
              " landed before a kill but not scored")  # fmt: skip
        if kill:
            assert "resuming: 3 landed files not scored yet" in log
        delivered = sorted(
            (d.message["room"], d.message["condition"], d.message["kind"]) for d in sink.deliveries
        )
        yield Run(
            warehouse,
            snapshot(warehouse),
            delivered,
            [d.idempotency_key for d in sink.deliveries],
            config,
        )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, warehouse_template) -> Run:
    folder = tmp_path_factory.mktemp("uninterrupted")
    runs = _run(folder, warehouse_template, "uninterrupted", kill=False)
    run = next(runs)
    next(runs, None)  # stops its warehouse
    return run


@pytest.fixture(scope="module")
def killed(tmp_path_factory, warehouse_template, uninterrupted):
    yield from _run(tmp_path_factory.mktemp("killed"), warehouse_template, "killed", kill=True)


def test_killed_again_and_again_the_processor_ends_as_an_uninterrupted_one(uninterrupted, killed):
    assert len(uninterrupted.snapshot["readings"]) == 40 * 5 * BEDS
    assert [a[1] for a in uninterrupted.snapshot["alerts"]] == ["critical", "critical", "warning"]
    for name, rows in uninterrupted.snapshot.items():
        assert killed.snapshot[name] == rows, name
    # nothing notified twice: each notification's key arrived once, and the same ones arrived
    assert len(killed.keys_delivered) == len(set(killed.keys_delivered))
    assert (
        killed.notifications
        == uninterrupted.notifications
        == [
            ("203", "critical", "raised"),
            ("209", "warning", "raised"),
            ("216", "critical", "raised"),
        ]
    )
    [(received, loaded, quarantined)] = query(
        killed.warehouse,
        "steward",
        "select sum(rows_received), sum(rows_loaded), sum(rows_quarantined)"
        " from audit.file_ledger where source = 'vitals'",
    )
    assert (received, loaded, quarantined) == (40 * 5 * BEDS, 40 * 5 * BEDS, 0)
    [(raw_rows,)] = query(killed.warehouse, "steward", "select count(*) from raw_vitals.readings")
    assert raw_rows == loaded


def _replay(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "replay", *args],
        env={**os.environ, "MONITORING_CONFIG": str(config)},
        check=False,
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )


def test_a_replayed_day_gives_the_same_aggregates_and_alerts_and_notifies_no_one_again(killed):
    warehouse = killed.warehouse
    notifications = query(
        warehouse, "monitor", "select * from monitoring.notifications order by notification_key"
    )
    ledger = query(warehouse, "steward", "select file_hash, recorded_at from audit.file_ledger")
    # spoil what the replay must recompute, so that an idle replay could not pass
    execute(
        warehouse,
        warehouse.admin_user,
        "update monitoring.readings set news2_score = 0, anomalous_vitals = '{}';"
        " delete from monitoring.vitals_minute;"
        " update monitoring.alerts set resolved_at = null, resolution = null, resolved_sequence = null",
    )
    assert snapshot(warehouse) != killed.snapshot

    result = _replay(killed.config, "2024-03-15", "2024-03-16")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replayed 40 files" in result.stderr
    assert snapshot(warehouse) == killed.snapshot
    assert (
        query(
            warehouse, "monitor", "select * from monitoring.notifications order by notification_key"
        )
        == notifications
    )
    # no file was landed again
    assert query(warehouse, "steward", "select file_hash, recorded_at from audit.file_ledger") == (
        ledger
    )


def _reopen_bed_16(warehouse: Warehouse) -> None:
    """Spoil bed 16's resolution (room 216), which the replay must recompute."""
    execute(
        warehouse,
        "monitor",
        "update monitoring.alerts set resolved_at = null, resolution = null,"
        " resolved_sequence = null where room = '216'",
    )


def test_a_replay_starting_mid_stream_starts_from_the_state_before_it(killed):
    warehouse = killed.warehouse
    # the minute in which bed 16 recovers and bed 3 turns critical: alerts open before it matter
    _reopen_bed_16(warehouse)
    result = _replay(killed.config, "2024-03-15T14:01:00", "2024-03-15T14:01:30")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replayed 6 files" in result.stderr
    assert snapshot(warehouse) == killed.snapshot


def test_a_replay_starting_inside_a_hold_resolves_where_the_processor_did(killed):
    """Bed 16 is calm from 14:01:10 and its alert resolves 10 s later: a replay from 14:01:15
    starts with the calm already 5 s long, as rebuilt from the readings (store.state_as_of)."""
    warehouse = killed.warehouse
    _reopen_bed_16(warehouse)
    result = _replay(killed.config, "2024-03-15T14:01:15", "2024-03-15T14:01:25")
    assert result.returncode == 0, result.stderr[-3000:]
    [(resolved_at,)] = query(
        warehouse, "monitor",
        "select resolved_at from monitoring.alerts where room = '216' and condition = 'critical'",
    )  # fmt: skip
    assert resolved_at.isoformat() == "2024-03-15T14:01:20+00:00"
    assert snapshot(warehouse) == killed.snapshot


def test_a_replay_refuses_while_the_processor_runs(killed, tmp_path):
    processor = ProcessorProcess(write_config(tmp_path), "http://127.0.0.1:9/", tmp_path / "p.log")
    processor.start()
    try:
        wait_until(lambda: "watching" in processor.log.read_text(), 60, "the processor's start")
        result = _replay(killed.config, "2024-03-15", "2024-03-16")
        assert result.returncode != 0 and "holds the lock" in result.stderr
    finally:
        assert processor.stop() == 0


def test_an_alert_only_a_replay_raises_is_history_and_pages_no_one(killed, tmp_path):
    """Replayed under other rules (warnings raised at once, not after 60 s), the readings raise
    alerts the live run never did: they are recorded as history (raised_in_baseline), which is
    never notified nor escalated, not news about the past."""
    warehouse = killed.warehouse
    before = [
        key
        for (key,) in query(warehouse, "monitor", "select alert_key::text from monitoring.alerts")
    ]
    notifications = query(warehouse, "monitor", "select * from monitoring.notifications")
    changed = write_config(
        tmp_path, alerts={"warning_persistence_seconds": 0, "resolve_hold_seconds": 10}
    )
    try:
        result = _replay(changed, "2024-03-15", "2024-03-16")
        assert result.returncode == 0, result.stderr[-3000:]
        new = query(
            warehouse, "monitor",
            "select condition, raised_in_baseline from monitoring.alerts"
            " where not (alert_key::text = any(%s))",
            (before,),
        )  # fmt: skip
        print("raised by the replay only:", new)
        assert new and all(history for _, history in new)
        assert (
            query(warehouse, "monitor", "select * from monitoring.notifications") == notifications
        )
    finally:  # the run as the other tests here know it
        with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as conn:
            conn.execute(
                "delete from monitoring.alerts where not (alert_key::text = any(%s))", (before,)
            )
        assert _replay(killed.config, "2024-03-15", "2024-03-16").returncode == 0
    assert snapshot(warehouse) == killed.snapshot
