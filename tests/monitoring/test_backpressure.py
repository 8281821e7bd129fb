"""Backpressure: while the warehouse does not take what the processor writes, the micro-batches
wait on disk, not in the processor's memory; the device feed's health check says so; once the
warehouse is back, the backlog drains and memory stays where it was. With the warehouse gone
altogether, the processor waits for it, sets no file aside, and lands everything once it is
back."""

from __future__ import annotations

import time
from datetime import timedelta

import psutil
import psycopg
import pytest

from common import settings
from demo.ward_vitals import START, drop, micro_batches
from monitoring.health import ProcessorUnhealthy, check, read_health
from tests.monitoring.live import (
    ProcessorProcess,
    processed_files,
    wait_for_cycles,
    wait_until,
    write_config,
)
from warehouse import embedded

# a stalled warehouse, waited out
pytestmark = pytest.mark.slow

BEDS = 250
SECONDS_PER_FILE = 10
WARM_UP, BACKLOG = 35, 40  # the warm-up fills the 300 s anomaly window (30 files)
BATCHES = list(micro_batches(BEDS, files=WARM_UP + BACKLOG, seconds_per_file=SECONDS_PER_FILE))


def _rss_mb(processor: ProcessorProcess) -> float:
    return psutil.Process(processor.process.pid).memory_info().rss / 2**20


def _unhealthy(warehouse, heartbeat_seconds: float) -> bool:
    try:
        check(warehouse, heartbeat_seconds=heartbeat_seconds, max_lag_seconds=600)
    except ProcessorUnhealthy as unhealthy:
        return "no heartbeat" in str(unhealthy)
    return False


def _failed_cycles(processor: ProcessorProcess) -> int:
    return processor.log.read_text().count("cycle failed (OperationalError)")


def test_a_stalled_warehouse_leaves_the_backlog_on_disk_and_memory_flat(test_warehouse, tmp_path):
    warehouse = test_warehouse.warehouse
    landing = settings.LANDING_DIR / "vitals"
    config = write_config(tmp_path, settle_seconds=0, poll_seconds=0.05, max_bytes_per_cycle=1)
    processor = ProcessorProcess(config, "http://127.0.0.1:9/", tmp_path / "processor.log")
    processor.start()
    # the files another test here had the processor score before (none when this runs first)
    before = processed_files(warehouse)

    def processed() -> int:
        return processed_files(warehouse) - before

    try:
        # steady memory: the most seen once the window is full (the allocator's level moves)
        samples = []
        for upto in (30, 33, WARM_UP):  # 30 files: 300 s, the window
            for batch in BATCHES[processed() : upto]:
                drop(landing, *batch)
            wait_until(lambda upto=upto: processed() == upto, 120, "the warm-up files")
            wait_for_cycles(warehouse, 2)  # a cycle with nothing to do: memory as it stays
            samples.append(_rss_mb(processor))
        steady = max(samples)

        with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as stall:
            # the warehouse stops taking checkpoints: the processor waits inside its cycle
            stall.execute("lock table monitoring.processed_files in access exclusive mode")
            for batch in BATCHES[WARM_UP:]:
                drop(landing, *batch)
            # until the health check sees no heartbeat for 3 s: the processor waits in its cycle
            wait_until(
                lambda: _unhealthy(warehouse, heartbeat_seconds=3), 60, "a heartbeat 3 s old"
            )
            stalled = _rss_mb(processor)
            waiting = len(list(landing.glob("vitals_*.ndjson")))
            with pytest.raises(ProcessorUnhealthy, match="no heartbeat"):
                check(warehouse, heartbeat_seconds=3, max_lag_seconds=600)
            stall.rollback()
        # at most one cycle's file was read; the rest wait in the folder
        assert waiting >= BACKLOG - 1, waiting
        assert stalled - steady < 20, (steady, stalled)

        lags = []
        while processed() < WARM_UP + BACKLOG:
            health = read_health(warehouse)
            lags.append((health.files_waiting, health.lag_seconds))
            time.sleep(0.05)
            processor.assert_alive()
        drained = _rss_mb(processor)
        backlog_mb = sum(len(text) for _, text in BATCHES[WARM_UP:]) / 2**20
        print(
            f"\nprocessor memory: {steady:.0f} MB steady (the most of {samples}),"
            f" {stalled:.0f} MB stalled with"
            f" {waiting} files ({backlog_mb:.0f} MB) waiting, {drained:.0f} MB after draining"
            f" them; largest lag seen {max(lag for _, lag in lags):.1f} s"
        )
        # the backlog was seen as lag while it drained, and none of it stayed in memory: the
        # backlog's text alone is 34 MB, parsed far more; what the allocator keeps after a burst
        # of cycles varies by about 15 MB between runs of the same code (8 to 23 MB measured)
        assert max(files for files, _ in lags) > BACKLOG / 2
        assert max(lag for _, lag in lags) >= 5
        assert drained - steady < backlog_mb, (samples, drained, backlog_mb)
        # the status is written after the cycle that committed the last file's checkpoint
        wait_until(
            lambda: check(warehouse, heartbeat_seconds=30, max_lag_seconds=600).files_waiting == 0,
            30, "the status of the cycle after the last file",
        )  # fmt: skip
    finally:
        assert processor.stop() == 0, processor.log.read_text()[-3000:]


def test_with_the_warehouse_away_the_processor_waits_and_loses_nothing(test_warehouse, tmp_path):
    warehouse = test_warehouse.warehouse
    landing = settings.LANDING_DIR / "vitals"
    before = processed_files(warehouse)
    later = list(micro_batches(20, files=3, seconds_per_file=5, start=START + timedelta(hours=2)))
    config = write_config(tmp_path, settle_seconds=0, poll_seconds=0.05)
    processor = ProcessorProcess(config, "http://127.0.0.1:9/", tmp_path / "processor.log")
    processor.start()
    try:
        wait_until(lambda: "watching" in processor.log.read_text(), 60, "the processor's start")
        embedded.stop(test_warehouse.var_dir / "pgdata")
        failed_before = _failed_cycles(processor)
        for batch in later:
            drop(landing, *batch)
        # cycles tried the waiting files and failed, and the processor waits on
        wait_until(
            lambda: _failed_cycles(processor) >= failed_before + 3, 60, "three failed cycles"
        )
        processor.assert_alive()
        assert len(list(landing.glob("vitals_*.ndjson"))) == 3  # waiting, not set aside
        embedded.ensure_running(
            test_warehouse.var_dir / "pgdata", warehouse.port, warehouse.admin_password, False
        )
        wait_until(lambda: processed_files(warehouse) == before + 3, 120, "the files after")
        assert not list((settings.QUARANTINE_DIR / "vitals").glob("*.ndjson"))
        assert "cycle failed (OperationalError)" in processor.log.read_text()
    finally:
        assert processor.stop() == 0, processor.log.read_text()[-3000:]
