"""The warehouse DAG's dbt part against `dbt build` of the same selection; a run with nothing new.

    python benchmarks/dag_run.py                  # the demo data (`make run`'s), times 1
    python benchmarks/dag_run.py --scale 0.2      # what the tests run

On a throwaway PostgreSQL, every demo source lands (as benchmarks/gate.py lands it) and the seeds
load (`dbt seed`, not timed: both builds below find them current, as every build after a
warehouse's first does); then:
  1. the baseline: the build plan of build_green (everything: its first build), `dbt build` of that
     selection into build_green, recorded as its complete build (only dbt build is timed);
  2. `airflow dags test warehouse_build` as `make run` runs it (orchestration.dag_runner: Airflow's
     database migrated, then the DAG, in one process): it builds build_blue, whose plan is the
     same selection. Its dbt part is the span from the producer's start to the end of the last
     task of the `dbt` group, read from Airflow's metadata database;
  3. the same again with nothing new: the published build_blue holds everything that landed, and
     it builds nothing (the process's whole time, Airflow's start-up included);
  4. the baseline again, build_green dropped first (the same selection, the same work): the
     ratio's `dbt build` is the mean of the two around the DAG's run. This machine's speed drifts
     from minute to minute (the same `dbt build` took 12 to 18 s); a baseline on one side only
     moved the ratio by as much as the goal's margin.
Progress goes to stderr; the last line of stdout is one JSON object with the figures and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg
from gate import land_demo, progress

from common import settings
from orchestration import pipeline
from orchestration.airflow_env import airflow_environment
from orchestration.stored_credentials import prepare_airflow_database
from warehouse.build_plan import record_built
from warehouse.connection import AIRFLOW_DATABASE, Warehouse, dbt_environment
from warehouse.dbt_runner import run_dbt
from warehouse.throwaway import THROWAWAY_TEMPLATE_VARIABLE, throwaway_warehouse

GOALS = {"dag_dbt_part_vs_dbt_build": 1.5, "nothing_new_dag_seconds": 45}
RUN_ID = "bench_dag_run"
DAG_ID = "warehouse_build"
PRODUCER = "dbt.dbt_producer_watcher"
BASELINE_SCHEMA = "build_green"  # the DAG builds build_blue, the first build's

# the dbt group's span and its tasks' states in one DAG run, from Airflow's metadata
DBT_PART = """
select min(start_date), max(end_date), count(*),
       count(*) filter (where state = 'success'), count(*) filter (where state = 'skipped'),
       sum(extract(epoch from end_date - start_date)) filter (where task_id = %s),
       avg(extract(epoch from end_date - start_date)) filter (where task_id <> %s)
from task_instance
where dag_id = %s and run_id = %s and task_id like 'dbt.%%'
"""


def run_warehouse_build(env: dict[str, str]) -> float:
    """The warehouse build's DAG as `make run` runs it (orchestration.dag_runner, one process:
    `airflow db migrate`, then `airflow dags test warehouse_build`), which must succeed; its
    process's wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.dag_runner", DAG_ID],
        env=env,
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"the warehouse build failed:\n{(done.stdout + done.stderr)[-5000:]}")
    return time.perf_counter() - started


def latest_run(warehouse: Warehouse) -> dict:
    """The newest warehouse_build run: its dbt part's seconds and its dbt tasks' states."""
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE)
    ) as conn:
        [run_id] = conn.execute(
            "select run_id from dag_run where dag_id = %s order by id desc limit 1", (DAG_ID,)
        ).fetchone()
        started, ended, tasks, succeeded, skipped, producer, node_task = conn.execute(
            DBT_PART, (PRODUCER, PRODUCER, DAG_ID, run_id)
        ).fetchone()
    return {
        "dbt_part_seconds": round((ended - started).total_seconds(), 2),
        "producer_seconds": round(float(producer or 0), 2),
        # each node task's own span (its report of the build), the gaps between them aside
        "node_task_mean_seconds": round(float(node_task or 0), 3),
        "dbt_tasks": tasks,
        "succeeded": succeeded,
        "skipped": skipped,
    }


def baseline_build(warehouse: Warehouse, folder: Path, target: str) -> tuple[float, str]:
    """Plan build_green, `dbt build` the plan's selection, record it; dbt build's seconds."""
    build_schema = BASELINE_SCHEMA
    env = {
        **os.environ,
        **dbt_environment(warehouse),
        "DBT_BUILD_SCHEMA": build_schema,
        "PIPELINE_RUN_ID": RUN_ID,
        # a target folder of its own: each baseline parses the project in full (no partial parse
        # file), as the producer's build does
        "DBT_TARGET_PATH": str(folder / target),
    }
    # the seeds first, untimed: the DAG's build below finds them loaded, so must the baseline
    # (in a target folder of their own: the baseline parses the project in full, as the
    # producer's first build does). A copy of a template warehouse has them loaded already.
    if not os.environ.get(THROWAWAY_TEMPLATE_VARIABLE):
        seeded = run_dbt(["seed"], {**env, "DBT_TARGET_PATH": str(folder / "dbt_seed_target")})
        if seeded.returncode != 0:
            sys.exit(f"dbt seed failed:\n{seeded.stdout[-5000:]}")
    plan = pipeline.plan_build(build_schema, RUN_ID)
    started = time.perf_counter()
    built = run_dbt(["build", "--select", plan["selection"]], env)
    seconds = time.perf_counter() - started
    if built.returncode != 0:
        sys.exit(f"dbt build failed:\n{built.stdout[-5000:]}")
    record_built(warehouse, build_schema, RUN_ID)
    return seconds, plan["selection"]


def drop_the_baselines_build(warehouse: Warehouse, build_schema: str) -> None:
    """Back to before the baseline's build: its schema, its recorded state, its vitals tables'
    withholding record (so that the next baseline builds the same selection, doing the same)."""
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user), autocommit=True) as conn:
        conn.execute(f"drop schema if exists {build_schema} cascade")
        # as migration 0001 made it: transformer may not create a schema (0010)
        conn.execute(f"create schema {build_schema} authorization transformer")
        conn.execute("delete from audit.build_states where build_schema = %s", (build_schema,))
        conn.execute(
            "delete from audit.withheld_vocabularies where relation like %s", (f"{build_schema}.%",)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of make run's demo data")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, throwaway_warehouse(Path(folder)) as warehouse:
        progress("landing the demo data")
        rows = land_demo(args.scale, RUN_ID)
        pipeline.validate_landed_batches(RUN_ID)  # as a run's first task: staging reads it
        progress("the baseline: dbt build of the planned selection into build_green")
        dbt_seconds, selection = baseline_build(warehouse, Path(folder), "dbt_target_before")
        progress(f"  {dbt_seconds:.1f} s (--select {selection})")

        env = airflow_environment(warehouse)
        prepare_airflow_database(warehouse, env)
        progress("airflow dags test warehouse_build: builds build_blue, the same selection")
        first_seconds = run_warehouse_build(env)
        first = latest_run(warehouse)
        progress(f"  {first_seconds:.1f} s, its dbt part {first['dbt_part_seconds']} s")
        progress("airflow dags test warehouse_build again, nothing new: build_blue is current")
        nothing_new_seconds = run_warehouse_build(env)
        nothing_new = latest_run(warehouse)
        progress(f"  {nothing_new_seconds:.1f} s ({nothing_new['skipped']} dbt tasks skipped)")
        progress("the baseline again, build_green dropped first")
        drop_the_baselines_build(warehouse, BASELINE_SCHEMA)
        dbt_seconds_after, selection_after = baseline_build(
            warehouse, Path(folder), "dbt_target_after"
        )
        if selection_after != selection:
            sys.exit(f"the second baseline selected {selection_after}, the first {selection}")
        progress(f"  {dbt_seconds_after:.1f} s")
        dbt_mean = (dbt_seconds + dbt_seconds_after) / 2

    report = {
        "benchmark": "dag_run",
        "demo_rows_total": sum(rows.values()),
        "selection": selection,
        "dbt_build_seconds": round(dbt_mean, 2),  # the mean of the two around the DAG's run
        "dbt_build_seconds_before_after": [round(dbt_seconds, 2), round(dbt_seconds_after, 2)],
        "dag_seconds": round(first_seconds, 2),
        "dag": first,
        "nothing_new_dag_seconds": round(nothing_new_seconds, 2),
        "nothing_new_dag": nothing_new,
        "ratio": round(first["dbt_part_seconds"] / dbt_mean, 3),
        "goals": GOALS,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
