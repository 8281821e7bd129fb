"""Run an Airflow command as the tests' Airflow processes run, and read what Airflow recorded."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from typing import Self

import psycopg

from common import settings
from orchestration import dag_runner
from orchestration.dbt_manifest import MANIFEST
from orchestration.service_secrets import (
    remove_vitals_processor_secrets,
    write_vitals_processor_secrets,
)
from tests.dags.dag_server import DONE
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
    if check:
        assert run.returncode == 0, f"{dag_ids}:\n{run.stdout[-5000:]}"
    return run.returncode, _outputs_by_command(run.stdout)


def _outputs_by_command(output: str) -> dict[str, str]:
    """Each command's output (orchestration.dag_runner's `== <command>` lines), by its last word."""
    outputs: dict[str, str] = {}
    command = None
    for line in output.splitlines(keepends=True):
        if line.startswith(dag_runner.MARKER):
            command = line.removeprefix(dag_runner.MARKER).split()[-1]
            outputs[command] = ""
        elif command is not None:
            outputs[command] += line
    return outputs


class DagRunner:
    """A module's one Airflow process (tests.dags.dag_server) running its DAGs request after
    request, each as `run_dags` would run it in a process of its own: for the DAG runs of a
    module with one Airflow environment. Its output reaches the tests as it is written."""

    def __init__(self, env: dict):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.dags.dag_server"],
            env=env,
            cwd=settings.PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)  # the process ended

    def run_dags(self, *dag_ids: str, check: bool = True) -> tuple[int, dict[str, str]]:
        """As `run_dags`: the exit code and each DAG's output."""
        self.process.stdin.write(" ".join(dag_ids) + "\n")
        self.process.stdin.flush()
        output, deadline = [], time.monotonic() + 900
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            if line is None:
                raise AssertionError(f"the DAG runner ended during {dag_ids}:\n{''.join(output)}")
            if line.startswith(DONE):
                code = int(line.removeprefix(DONE))
                break
            output.append(line)
        text = "".join(output)
        if check:
            assert code == 0, f"{dag_ids}:\n{text[-5000:]}"
        return code, _outputs_by_command(text)

    def run_dag(self, dag_id: str) -> str:
        """`airflow dags test dag_id`, which must succeed; its output."""
        return self.run_dags(dag_id)[1][dag_id]

    def close(self) -> None:
        """Ends the process, idle between requests: killed, as its exit would spend seconds
        collecting what Airflow left (common/process_exit.py)."""
        self.process.stdin.close()
        self.process.kill()
        self.process.wait(timeout=60)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def process_vitals(env: dict) -> str:
    """The vitals processor takes what waits in its landing folder (`--once`), as `make run`
    does before the DAGs, with its own secrets file only; its output."""
    try:
        run = subprocess.run(
            [sys.executable, "-m", "monitoring", "--once"],
            env={**env, **write_vitals_processor_secrets()},
            cwd=settings.PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    finally:
        remove_vitals_processor_secrets()
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
