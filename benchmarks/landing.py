"""Landing speed: the same EHR CSV landed three ways in one run, on a throwaway PostgreSQL.

    python benchmarks/landing.py                 # 1,000,000 rows; peak memory at 1M and 4M rows
    python benchmarks/landing.py --rows 20000 --memory-rows 20000 40000   # what the tests run

1. the project's loader (ingestion.file_source.land: hashing, validation, quarantine, dlt with
   parquet through ADBC, reconciliation), warmed up as a long-running loader is (imports done,
   one small file landed first, so its dlt pipeline exists), 2. PostgreSQL's `COPY FROM STDIN` of the file into a
   table of the same text columns (the ceiling), 3. `pandas.read_csv` + `DataFrame.to_sql` over
   SQLAlchemy with psycopg 3 (what a user would otherwise write). Each runs in its own process,
   which reports its seconds and peak memory, after a CHECKPOINT; COPY and the loader run twice
   and the faster run counts. Progress goes to stderr; the last line of stdout is
   one JSON object with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from demo.ehr_extracts import COLUMNS, write_large_extract

GOALS = {"loader_vs_copy": 0.3, "loader_vs_to_sql": 5.0}


def progress(message: str) -> None:
    print(f"[landing bench] {message}", file=sys.stderr, flush=True)


# --- the three ways, each run in a child process ------------------------------------------------


def run_loader(path: Path) -> dict:
    import dlt  # noqa: F401  (a long-lived loader has imported it: time the landing, not imports)

    from common import settings
    from ingestion import code_sets
    from ingestion.file_source import land
    from ingestion.sources.ehr_files import EHR_FILES
    from warehouse.connection import from_environment

    code_sets.icd10cm()
    warehouse = from_environment()
    # Warm up as a long-running loader is: land a small file first, then time the large one.
    target = settings.LANDING_DIR / "ehr" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    write_large_extract(target.with_name("ehr_2023-12-31_warmup.csv"), 1000, seed=1)
    land(EHR_FILES, warehouse, run_id="bench_warmup")
    os.link(path, target)
    started = time.perf_counter()
    outcomes = land(EHR_FILES, warehouse, run_id=f"bench_{path.stem}")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "loaded": sum(o.rows_loaded for o in outcomes),
        "quarantined": sum(o.rows_quarantined for o in outcomes),
    }


def run_copy(path: Path) -> dict:
    import psycopg

    from warehouse.connection import from_environment

    warehouse = from_environment()
    columns = ", ".join(f"{name} text" for name in COLUMNS)
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        conn.execute(
            f"drop table if exists raw_ehr.bench_copy; create table raw_ehr.bench_copy ({columns})"
        )
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("copy raw_ehr.bench_copy from stdin (format csv, header)") as copy,
            path.open("rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - started
        loaded = conn.execute("select count(*) from raw_ehr.bench_copy").fetchone()[0]
    return {"seconds": seconds, "loaded": loaded}


def run_to_sql(path: Path) -> dict:
    import pandas as pd
    import sqlalchemy

    from warehouse.connection import from_environment

    warehouse = from_environment()
    engine = sqlalchemy.create_engine(warehouse.url("loader", driver="postgresql+psycopg"))
    started = time.perf_counter()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.to_sql(
        "bench_to_sql", engine, schema="raw_ehr", if_exists="replace", index=False, chunksize=10_000
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "loaded": len(frame)}


WAYS = {"loader": run_loader, "copy": run_copy, "to_sql": run_to_sql}


def _checkpoint() -> None:
    """Flush what the previous measurement wrote, so its checkpoint does not land in the next."""
    import psycopg

    from warehouse.connection import from_environment

    warehouse = from_environment()
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user), autocommit=True) as conn:
        conn.execute("checkpoint")


def measure(way: str, path: Path) -> dict:
    """Run one way in a child process (sharing the warehouse env); add its peak memory."""
    _checkpoint()
    result = subprocess.run(
        [sys.executable, __file__, "--child", way, str(path)],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ),
    )
    if result.returncode != 0:
        raise SystemExit(f"{way} failed:\n{result.stderr[-4000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    progress(f"{way}: {figures['loaded']} rows in {figures['seconds']:.2f}s")
    return figures


def child(way: str, path: Path) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    figures = WAYS[way](path)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, nargs="*", default=[1_000_000, 4_000_000])
    parser.add_argument("--child", nargs=2, metavar=("WAY", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    from warehouse.throwaway import throwaway_warehouse

    with (
        tempfile.TemporaryDirectory(prefix="landing_bench_") as tmp,
        throwaway_warehouse(Path(tmp) / "var"),
    ):
        files = {}
        for rows in sorted({args.rows, *args.memory_rows}):
            files[rows] = Path(tmp) / f"ehr_2024-01-01_{rows:08d}.csv"
            progress(f"writing a {rows:,}-row extract")
            write_large_extract(files[rows], rows)
        # Best of two for COPY and the loader (each loader run needs a file it has not seen).
        second = Path(tmp) / f"ehr_2024-01-02_{args.rows:08d}.csv"
        write_large_extract(second, args.rows, seed=12)
        figures = {
            "copy": min(
                (measure("copy", files[args.rows]) for _ in range(2)), key=lambda f: f["seconds"]
            ),
            "loader": min(
                (measure("loader", path) for path in (files[args.rows], second)),
                key=lambda f: f["seconds"],
            ),
            "to_sql": measure("to_sql", files[args.rows]),
        }
        memory = {}
        for rows in args.memory_rows:
            if rows == args.rows:
                memory[rows] = figures["loader"]["peak_rss_mb"]
            else:
                memory[rows] = measure("loader", files[rows])["peak_rss_mb"]
    rate = {way: args.rows / figures[way]["seconds"] for way in figures}
    report = {
        "benchmark": "landing",
        "rows": args.rows,
        "rows_per_second": {way: round(value) for way, value in rate.items()},
        "loader_vs_copy": round(rate["loader"] / rate["copy"], 3),
        "loader_vs_to_sql": round(rate["loader"] / rate["to_sql"], 2),
        "goals": GOALS,
        "loader_rows_loaded": figures["loader"]["loaded"],
        "loader_rows_quarantined": figures["loader"]["quarantined"],
        "loader_peak_rss_mb_by_rows": {str(rows): round(mb) for rows, mb in memory.items()},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
