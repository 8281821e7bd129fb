"""Incremental builds: adding 1% more vitals costs a small fraction of a full refresh.

    python benchmarks/incremental.py                     # 1,000,000 readings, then 1% more
    python benchmarks/incremental.py --readings 20000    # what the tests run

On a throwaway PostgreSQL: device readings land through the file sources' path (with the patient
registry and a small EHR extract, so readings have their patients and the quality gate has
encounters to pass), then every build is made as the pipeline makes it: the build plan (dbt
source freshness, then dbt ls against the build schema's last complete build:
warehouse/build_plan.py), `dbt build` of what it selects, the quality gate, publish:
  1. the first build (build_blue), published;
  2. the full refresh: `dbt build --full-refresh` of everything (build_green), published;
  3. 1% more readings land: an incremental build (build_blue, which catches up from its own last
     build, the first), published;
  4. blue/green: the other schema (build_green) catches up on the same 1%, published;
  5. nothing new: build_blue again, published.
A build's cost is the sum of its models' execution times from dbt's run_results.json and the
publish step; dbt's own start-up (of the plan's two dbt commands and of the build), the plan's
freshness checks (sources.json: a fixed ~40 ms per source, whatever the data), the tests' time
and the gate are printed beside it, not in it. dbt
runs one thread here: with several, a model's execution time includes its wait for a core, and
the sum counts each second of a two-core machine up to twice. Progress goes to stderr; the last
line of stdout is one JSON object with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg

from common import settings
from demo.ehr_extracts import write_extracts, write_patient_extract
from orchestration import pipeline
from warehouse.build_plan import plan_build, record_built
from warehouse.connection import dbt_environment, from_environment
from warehouse.dbt_runner import run_dbt
from warehouse.publish import publish
from warehouse.throwaway import throwaway_warehouse

GOALS = {"incremental_vs_full_refresh": 0.10}
# The models the readings flow through, whose cost grows with them (the rest is dbt's fixed
# per-model cost, the same for a build of one reading or of a million).
VITALS_MODELS = (
    "stg_vitals__readings",
    "device_crosswalk",
    "deid_vital_readings",
    "fct_vital_signs",
    "fct_vital_signs_hourly",
)
DEVICES = 400
FILE_READINGS = 50_000
START = datetime(2024, 3, 1, tzinfo=UTC)


def progress(message: str) -> None:
    print(f"[incremental bench] {message}", file=sys.stderr, flush=True)


def write_readings(folder: Path, first: int, count: int) -> None:
    """Readings `first` .. `first + count - 1`: each device reads once every 10 seconds, on the
    patient it is attached to, in NDJSON files of at most FILE_READINGS lines."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(first)
    for start in range(first, first + count, FILE_READINGS):
        end = min(start + FILE_READINGS, first + count)
        lines = []
        for number in range(start, end):
            device = number % DEVICES
            at = START + timedelta(seconds=10 * (number // DEVICES))
            lines.append(
                json.dumps(
                    {
                        "device_id": f"MON_{device:04d}",
                        "patient_id": f"PAT_{10000 + device}",
                        "timestamp": at.isoformat(),
                        "measurements": {
                            "heart_rate": rng.randint(55, 110),
                            "blood_pressure": {"systolic": 120, "diastolic": 80},
                            "temperature": round(rng.uniform(97.0, 100.0), 1),
                            "oxygen_saturation": rng.randint(92, 100),
                            "respiratory_rate": rng.randint(12, 22),
                        },
                        "device_status": "OK",
                        "location": {"hospital": "General Hospital", "ward": "ICU", "room": "101"},
                    }
                )
            )
        (folder / f"vitals_{start:09d}.ndjson").write_text("\n".join(lines) + "\n")


def build(env: dict, targets: Path, build_schema: str, run_id: str, full: bool = False) -> dict:
    """Plan, dbt build, gate, publish; the cost from dbt's artifacts and the publish step.

    dbt's target folder is the build schema's own under `targets` (as the pipeline's plan has
    it): dbt parses the project again whenever its profile's schema differs from the last
    command's in that folder."""
    target = targets / build_schema
    env = {
        **env,
        "DBT_BUILD_SCHEMA": build_schema,
        "PIPELINE_RUN_ID": run_id,
        "DBT_TARGET_PATH": str(target),
    }
    warehouse = from_environment()
    # as the warehouse build does: staging reads only what the landed checkpoint validated
    pipeline.validate_landed_batches(run_id)
    # a day turned since the schema's last build: the models that reckon ages on it build too
    with psycopg.connect(**warehouse.connect_kwargs("transformer")) as conn:
        last_built = conn.execute(
            "select built_on < current_date from audit.build_states"
            " where build_schema = %s and stage = 'built'",
            (build_schema,),
        ).fetchone()
    started = time.perf_counter()
    plan = plan_build(warehouse, build_schema, run_id, env, full=full)
    plan_seconds = time.perf_counter() - started
    freshness = json.loads((target / "sources.json").read_text())["results"]
    freshness_seconds = sum(r["execution_time"] for r in freshness)
    models: dict[str, float] = {}
    others = dbt_seconds = dbt_elapsed = 0.0
    if not plan.builds_nothing:
        started = time.perf_counter()
        result = run_dbt(
            ["build", "--threads", "1", *(["--full-refresh"] if full else []), *plan.select_args()],
            env,
        )
        dbt_seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"dbt build failed:\n{result.stdout[-4000:]}")
        run_results = json.loads((target / "run_results.json").read_text())
        dbt_elapsed = run_results["elapsed_time"]
        results = run_results["results"]
        models = {
            r["unique_id"].split(".")[2]: r["execution_time"]
            for r in results
            if r["unique_id"].startswith("model.")
        }
        others = sum(
            r["execution_time"] for r in results if not r["unique_id"].startswith("model.")
        )
        record_built(warehouse, build_schema, run_id)
    pipeline.quality_gate(build_schema, run_id)
    started = time.perf_counter()
    publish(warehouse, build_schema, run_id)
    publish_seconds = time.perf_counter() - started
    model_seconds = sum(models.values())
    return {
        "build_schema": build_schema,
        "cost_seconds": round(model_seconds + publish_seconds, 3),
        "model_seconds": round(model_seconds, 3),
        "vitals_model_seconds": round(sum(models.get(name, 0.0) for name in VITALS_MODELS), 3),
        "models": len(models),
        "new_day": bool(last_built and last_built[0]),
        "freshness_query_seconds": round(freshness_seconds, 3),
        "publish_seconds": round(publish_seconds, 3),
        "tests_and_seeds_seconds": round(others, 3),
        "plan_wall_seconds": round(plan_seconds, 3),
        "dbt_build_wall_seconds": round(dbt_seconds, 3),
        "dbt_startup_seconds": round(dbt_seconds - dbt_elapsed, 3),
        "plan": plan.reason,
        "slowest_models": {
            name: round(seconds, 3)
            for name, seconds in sorted(models.items(), key=lambda kv: -kv[1])[:6]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--added-share", type=float, default=0.01)
    args = parser.parse_args()
    added = max(1, int(args.readings * args.added_share))

    with tempfile.TemporaryDirectory(prefix="bench_incremental_") as tmp:
        var_dir = Path(tmp)
        with throwaway_warehouse(var_dir) as warehouse:
            targets = var_dir / "dbt_target"
            env = {
                **os.environ,
                **dbt_environment(warehouse),
                "DBT_LOG_PATH": str(var_dir / "dbt_logs"),
            }
            vitals = settings.LANDING_DIR / "vitals"
            progress(f"landing {args.readings:,} readings, the registry and a small EHR extract")
            write_patient_extract(settings.LANDING_DIR / "ehr_patients")
            pipeline.land_files("ehr_patients", "bench_1", settle_seconds=0)
            write_extracts(settings.LANDING_DIR / "ehr", files=1, rows=200, defects_per_file=0)
            pipeline.land_files("ehr", "bench_1", settle_seconds=0)
            write_readings(vitals, 0, args.readings)
            landed = pipeline.land_files("vitals", "bench_1", settle_seconds=0)
            progress(f"landed {landed['loaded']:,}; first build")
            first = build(env, targets, "build_blue", "bench_1")
            progress(f"first build {first['cost_seconds']}s; full refresh")
            full = build(env, targets, "build_green", "bench_2", full=True)
            progress(f"full refresh {full['cost_seconds']}s; landing {added:,} more readings")
            write_readings(vitals, args.readings, added)
            more = pipeline.land_files("vitals", "bench_3", settle_seconds=0)
            incremental = build(env, targets, "build_blue", "bench_3")
            progress(f"incremental {incremental['cost_seconds']}s; the other schema catches up")
            catch_up = build(env, targets, "build_green", "bench_4")
            progress(f"catch-up {catch_up['cost_seconds']}s; nothing new")
            nothing_new = build(env, targets, "build_blue", "bench_5")
            progress(f"nothing new {nothing_new['cost_seconds']}s")

    ratio = incremental["cost_seconds"] / full["cost_seconds"]
    report = {
        "benchmark": "incremental",
        "readings": args.readings,
        "readings_added": more["loaded"],
        "full_refresh": full,
        "incremental_1_percent": incremental,
        "other_schema_catch_up": catch_up,
        "nothing_new": nothing_new,
        "incremental_vs_full_refresh": round(ratio, 4),
        "catch_up_vs_full_refresh": round(catch_up["cost_seconds"] / full["cost_seconds"], 4),
        "nothing_new_vs_full_refresh": round(nothing_new["cost_seconds"] / full["cost_seconds"], 4),
        "vitals_models_incremental_vs_full_refresh": round(
            incremental["vitals_model_seconds"] / full["vitals_model_seconds"], 4
        ),
        "goals": GOALS,
        "meets_goals": ratio <= GOALS["incremental_vs_full_refresh"]
        and nothing_new["cost_seconds"] < incremental["cost_seconds"],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
