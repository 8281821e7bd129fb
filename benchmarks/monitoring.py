"""The vitals processor's speed: sustained readings per second from landing folder to scored,
windowed and alerted, and the latency from a micro-batch's landing to its alert's notification.

    python benchmarks/monitoring.py                            # 500 beds, 200k + 400k readings
    python benchmarks/monitoring.py --beds 20 --files 3 --feed-files 4   # what the tests run

1. Throughput: `--files` micro-batches (each bed once a second, `--seconds-per-file` seconds a
   file) wait in landing; the processor (warmed up on one batch) takes them all. Beside it, in the
   same run and on the same kind of files, the landing alone (file_source.land: ledger,
   validation, dlt) as the baseline the scoring adds to.
2. Latency: the processor runs as `make up` runs it (its own process, monitoring.yml as shipped)
   while a producer drops one micro-batch a second (beds x seconds-per-file readings a second of
   feed), in each a new patient turning critical; a local webhook receives the notifications.
   Latency: from the file's appearance in landing (rename) to the webhook's receipt.
3. With `--analyst-load`, the latency again on the same kind of feed, now with analysts
   crowding the server as issue 22 describes (200 connection attempts, 10 long queries running
   for the whole feed): the alert must still come within 5 s, and the analysts' connections past
   their limit (warehouse/role_limits.yml) are refused. Its ratio is against step 2's latency,
   measured in the same run.

Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil
import psycopg

from common import settings
from demo.ward_vitals import START, Deterioration, drop, micro_batches
from demo.webhook_receiver import WebhookReceiver
from ingestion.file_source import land
from ingestion.sources.vitals_files import VITALS_FILES
from monitoring.processor import Processor, load_config
from warehouse.throwaway import throwaway_warehouse

GOAL_READINGS_PER_SECOND = 10_000
GOAL_P95_SECONDS = 5.0
GOAL_MAX_SECONDS_UNDER_ANALYST_LOAD = 5.0  # a critical alert within 5 s of landing (issue 22)
ANALYST_ATTEMPTS = 200
ANALYST_LONG_QUERIES = 10
# CPU-bound for minutes, writing nothing (a set-returning function in the select list streams its
# rows; in `from` it would materialize them into temporary files, which the analyst's
# temp_file_limit stops): the analyst's statement_timeout (5 min) or the end of the feed stops it
LONG_QUERY = "select count(*) from (select generate_series(1, 10000000000)) as numbers"


def progress(message: str) -> None:
    print(f"[monitoring bench] {message}", file=sys.stderr, flush=True)


def _batches(beds: int, files: int, seconds_per_file: int, start, plans=()) -> list:
    return list(micro_batches(beds, files, seconds_per_file, tuple(plans), start=start))


def processed_files(warehouse) -> int:
    with psycopg.connect(**warehouse.connect_kwargs("monitor")) as conn:
        return conn.execute("select count(*) from monitoring.processed_files").fetchone()[0]


def landing_only(warehouse, batches: list) -> float:
    """Readings a second through file_source.land alone (the baseline)."""
    folder = settings.LANDING_DIR / "vitals"
    paths = [drop(folder, name, text) for name, text in batches]
    started = time.perf_counter()
    outcomes = land(VITALS_FILES, warehouse, "bench_landing", paths)
    seconds = time.perf_counter() - started
    return sum(o.rows_loaded for o in outcomes) / seconds


def throughput(warehouse, batches: list, warm_up: list) -> dict:
    config = load_config()
    config["settle_seconds"] = 0
    processor = Processor(warehouse, config)
    folder = settings.LANDING_DIR / "vitals"
    try:
        drop(folder, *warm_up[0])
        processor.run(once=True)
        for name, text in batches:
            drop(folder, name, text)
        started = time.perf_counter()
        scored = processor.run(once=True)
        seconds = time.perf_counter() - started
    finally:
        processor.close()
    return {"readings": scored, "seconds": round(seconds, 3)}


def latency(
    warehouse,
    tmp: Path,
    batches: list,
    seconds_per_file: int,
    analyst_load: bool = False,
    first_bed: int = 0,
) -> dict:
    """Feed one micro-batch a second to the processor running on its own; in file k, bed
    `first_bed` + k turns critical and raises one alert. With `analyst_load`, analysts crowd the
    server while it is fed."""
    folder = settings.LANDING_DIR / "vitals"
    log_file = tmp / "processor.log"
    with WebhookReceiver() as sink, log_file.open("w") as log:
        processor = subprocess.Popen(
            [sys.executable, "-m", "cli", "processor"],
            cwd=ROOT,
            env={**os.environ, "CLINICAL_ALERT_WEBHOOK_URL": sink.url},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        load = None
        try:
            deadline = time.monotonic() + 120
            while "watching" not in log_file.read_text():
                if time.monotonic() > deadline or processor.poll() is not None:
                    raise RuntimeError(log_file.read_text()[-3000:])
                time.sleep(0.1)
            before = processed_files(warehouse)
            if analyst_load:
                load = AnalystLoad(warehouse, ANALYST_ATTEMPTS, ANALYST_LONG_QUERIES)
                progress(
                    f"analysts: {len(load.held)} connected, {load.refused} refused,"
                    f" {len(load.running)} running a long query"
                )
            rss = [psutil.Process(processor.pid).memory_info().rss]
            landed_at = []
            next_tick = time.monotonic()
            for index, (name, text) in enumerate(batches):
                time.sleep(max(0.0, next_tick - time.monotonic()))
                landed_at.append(drop(folder, name, text).stat().st_mtime)
                next_tick += 1.0
                if index % 10 == 9:
                    rss.append(psutil.Process(processor.pid).memory_info().rss)
                    progress(f"fed {index + 1}/{len(batches)} micro-batches")
            deadline = time.monotonic() + 120
            while processed_files(warehouse) < before + len(batches) or len(
                sink.of_kind("raised")
            ) < len(batches):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not all alerts came: {log_file.read_text()[-3000:]}")
                time.sleep(0.1)
            rss.append(psutil.Process(processor.pid).memory_info().rss)
            if load is not None:
                long_queries_to_the_end = load.still_running()
        finally:
            if load is not None:
                load.stop()
            processor.terminate()
            processor.wait(timeout=60)
    received = {d.message["room"]: d.received_at for d in sink.of_kind("raised")}
    # file k turns bed first_bed + k critical: the alert of room 200 + first_bed + k
    latencies = sorted(
        received[f"{200 + first_bed + k}"] - landed_at[k] for k in range(len(batches))
    )
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    analysts = {}
    if load is not None:
        analysts = {
            "analyst_connections": {"held": len(load.held), "refused": load.refused},
            "analyst_long_queries_running_to_the_end": long_queries_to_the_end,
        }
    return {
        **analysts,
        "micro_batches": len(batches),
        "readings_per_second_fed": len(batches[0][1].splitlines()),
        "latency_median_seconds": round(statistics.median(latencies), 3),
        "latency_p95_seconds": round(p95, 3),
        "latency_max_seconds": round(latencies[-1], 3),
        "processor_rss_mb": [round(r / 2**20) for r in rss],
    }


class AnalystLoad:
    """Analysts crowding the server: every connection they may hold (and more attempts, refused),
    `long_queries` of them running a long query, until `stop`."""

    def __init__(self, warehouse, attempts: int, long_queries: int) -> None:
        self.held: list[psycopg.Connection] = []
        self.refused = 0
        for _ in range(attempts):
            try:
                self.held.append(
                    psycopg.connect(**warehouse.connect_kwargs("analyst"), autocommit=True)
                )
            except psycopg.OperationalError:
                self.refused += 1
        self.running = self.held[:long_queries]
        self.threads = [
            threading.Thread(target=self._long_query, args=(conn,), daemon=True)
            for conn in self.running
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _long_query(conn: psycopg.Connection) -> None:
        try:
            conn.execute(LONG_QUERY)
        except psycopg.Error:
            pass  # cancelled by stop, or by the analyst's statement_timeout

    def still_running(self) -> int:
        return sum(thread.is_alive() for thread in self.threads)

    def stop(self) -> None:
        for conn in self.running:
            conn.cancel_safe()
        for thread in self.threads:
            thread.join(timeout=30)
        for conn in self.held:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beds", type=int, default=500)
    parser.add_argument("--seconds-per-file", type=int, default=20)
    parser.add_argument("--files", type=int, default=20, help="throughput: files waiting")
    parser.add_argument("--feed-files", type=int, default=40, help="latency: one a second")
    parser.add_argument(
        "--analyst-load",
        action="store_true",
        help=f"latency again with {ANALYST_ATTEMPTS} analyst connection attempts and"
        f" {ANALYST_LONG_QUERIES} long analyst queries",
    )
    args = parser.parse_args()
    # one bed turns critical in each file (each feed its own beds: an open alert raises no other)
    feeds = 2 if args.analyst_load else 1
    if args.feed_files * feeds > args.beds:
        parser.error(f"--feed-files: one bed turns critical in each, so at most --beds / {feeds}")
    logging.basicConfig(level=logging.WARNING)
    per_file = args.beds * args.seconds_per_file
    progress(f"writing micro-batches of {per_file} readings")
    warm_up = _batches(args.beds, 1, args.seconds_per_file, START - timedelta(hours=1))
    baseline_batches = _batches(args.beds, args.files, args.seconds_per_file, START)
    timed = _batches(args.beds, args.files, args.seconds_per_file, START + timedelta(hours=1))
    critical = [  # in file k, bed k turns critical at the file's first second
        Deterioration(
            k, warning_at=k * args.seconds_per_file, critical_at=k * args.seconds_per_file
        )
        for k in range(args.feed_files)
    ]
    feed = _batches(
        args.beds, args.feed_files, args.seconds_per_file, START + timedelta(days=1), critical
    )
    with tempfile.TemporaryDirectory(prefix="monitoring_bench_") as tmp:
        with throwaway_warehouse(Path(tmp) / "baseline") as warehouse:
            progress(f"baseline: landing alone, {args.files} files")
            land(
                VITALS_FILES,
                warehouse,
                "warm_up",
                [drop(settings.LANDING_DIR / "vitals", *warm_up[0])],
            )
            landing_rate = landing_only(warehouse, baseline_batches)
        with throwaway_warehouse(Path(tmp) / "var") as warehouse:
            progress(f"throughput: {args.files} files waiting, {args.files * per_file} readings")
            through = throughput(warehouse, timed, warm_up)
            progress(f"latency: {args.feed_files} micro-batches fed one a second")
            late = latency(warehouse, Path(tmp), feed, args.seconds_per_file)
            crowded = None
            if args.analyst_load:
                progress("latency again, analysts crowding the server")
                crowded_feed = _batches(
                    args.beds,
                    args.feed_files,
                    args.seconds_per_file,
                    START + timedelta(days=2),
                    [
                        Deterioration(
                            args.feed_files + k,
                            warning_at=k * args.seconds_per_file,
                            critical_at=k * args.seconds_per_file,
                        )
                        for k in range(args.feed_files)
                    ],
                )
                crowded = latency(
                    warehouse,
                    Path(tmp),
                    crowded_feed,
                    args.seconds_per_file,
                    analyst_load=True,
                    first_bed=args.feed_files,
                )
    rate = through["readings"] / through["seconds"]
    report = {
        "benchmark": "monitoring",
        "readings_per_file": per_file,
        "throughput": {**through, "readings_per_second": round(rate)},
        "landing_only_readings_per_second": round(landing_rate),
        "processor_vs_landing_only": round(rate / landing_rate, 3),
        "latency": late,
        **(
            {
                "latency_under_analyst_load": crowded,
                "max_latency_under_analyst_load_vs_quiet": round(
                    crowded["latency_max_seconds"] / late["latency_max_seconds"], 3
                ),
            }
            if crowded
            else {}
        ),
        "goals": {
            "readings_per_second": GOAL_READINGS_PER_SECOND,
            "latency_p95_seconds": GOAL_P95_SECONDS,
            "latency_max_seconds_under_analyst_load": GOAL_MAX_SECONDS_UNDER_ANALYST_LOAD,
            "met": rate >= GOAL_READINGS_PER_SECOND
            and late["latency_p95_seconds"] < GOAL_P95_SECONDS
            and (
                crowded is None
                or crowded["latency_max_seconds"] < GOAL_MAX_SECONDS_UNDER_ANALYST_LOAD
            ),
        },
    }
    progress(
        f"{rate:,.0f} readings/s ({report['processor_vs_landing_only']} of landing alone);"
        f" landing -> notification median {late['latency_median_seconds']} s,"
        f" p95 {late['latency_p95_seconds']} s"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
