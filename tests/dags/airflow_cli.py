"""Run an Airflow command as the tests' Airflow processes run, and read what Airflow recorded."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg

from common import settings
from orchestration import dag_runner
from orchestration.dbt_manifest import MANIFEST
from warehouse.connection import AIRFLOW_DATABASE, Warehouse


def run_airflow(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(settings.VENV_BIN / "airflow"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def run_dag(env: dict, dag_id: str) -> str:
    """`airflow dags test dag_id`, which must succeed; its output (the task logs)."""
    run = run_airflow(env, "dags", "test", dag_id)
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"{dag_id}:\n{output[-5000:]}"
    return output


def run_dags(env: dict, *dag_ids: str, check: bool = True) -> tuple[int, dict[str, str]]:
    """`airflow dags test` of each of `dag_ids` in turn, in one process, as `make run` runs them
    (orchestration.dag_runner: Airflow starts once); its exit code and each DAG's output. The first
    DAG run that fails ends it (with `check`, the test)."""
    run = subprocess.run(
        [sys.executable, "-m", "orchestration.dag_runner", *dag_ids],
        env=env,
        cwd=settings.PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        timeout=900,
    )
    outputs: dict[str, str] = {}
    command = None
    for line in run.stdout.splitlines(keepends=True):
        if line.startswith(dag_runner.MARKER):
            command = line.removeprefix(dag_runner.MARKER).split()[-1]
            outputs[command] = ""
        elif command is not None:
            outputs[command] += line
    if check:
        assert run.returncode == 0, f"{dag_ids}:\n{run.stdout[-5000:]}"
    return run.returncode, outputs


def process_vitals(env: dict) -> str:
    """The vitals processor takes what waits in its landing folder (`--once`), as `make run`
    does before the DAGs; its output."""
    run = subprocess.run(
        [sys.executable, "-m", "cli", "processor", "--once"],
        env=env,
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    return output


def asset_events(warehouse: Warehouse) -> list[str]:
    """The name of the asset of every asset event in Airflow's metadata, oldest first."""
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE)
    ) as conn:
        rows = conn.execute(
            "select asset.name from asset_event join asset on asset.id = asset_event.asset_id"
            " order by asset_event.id"
        ).fetchall()
    return [name for (name,) in rows]


def task_states(warehouse: Warehouse, dag_id: str) -> dict[str, tuple[str, int]]:
    """Each task of `dag_id`'s newest run: its state and its try number."""
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE)
    ) as conn:
        rows = conn.execute(
            """
            select task_id, state, try_number from task_instance
            where dag_id = %(dag)s and run_id = (
                select run_id from dag_run where dag_id = %(dag)s order by id desc limit 1
            )
            """,
            {"dag": dag_id},
        ).fetchall()
    return {task_id: (state, try_number) for task_id, state, try_number in rows}


def model_version(model: str) -> int | None:
    """The latest version of `model` (dbt's manifest), None when it has no versions."""
    nodes = json.loads(MANIFEST.read_text())["nodes"].values()
    node = next(
        node
        for node in nodes
        if node["resource_type"] == "model"
        and node["name"] == model
        and str(node.get("version")) == str(node.get("latest_version"))
    )
    return node.get("version")


def model_task(model: str) -> str:
    """The Cosmos task of `model` in the warehouse build: `dbt.<name>_run`, or for a versioned
    model its latest version's, `dbt.<name>_v<N>_run`."""
    version = model_version(model)
    return f"dbt.{model}{'' if version is None else f'_v{version}'}_run"
