"""`make run`: start the warehouse, make demo data if there is none, let the vitals processor take
the waiting micro-batches (`--once`), run each source's DAG and then the warehouse build once
through Airflow (`airflow dags test` each, all in one process: orchestration.dag_runner), and
print what they did.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO

import psycopg

from cli.summary import render, runs_since, summarize
from common import settings
from common.private_files import make_var_private
from demo.claims_files import write_claims
from demo.ehr_extracts import write_extracts, write_patient_extract
from demo.fhir_resources import demo_resources
from demo.fhir_server import DEMO_SERVER_KEY, DemoFhirServer, FhirStore
from demo.research_db import ensure_database, fill
from demo.vitals_files import write_vitals
from orchestration import dag_runner, dbt_manifest
from orchestration.airflow_env import airflow_environment
from orchestration.airflow_services import running
from orchestration.service_secrets import (
    remove_vitals_processor_secrets,
    write_vitals_processor_secrets,
)
from orchestration.stored_credentials import prepare_airflow_database
from warehouse import wal_archive
from warehouse.bootstrap import bootstrap
from warehouse.connection import Warehouse, from_environment
from warehouse.runs import workflow_of

log = logging.getLogger("make run")

TASK_INSTANCE = re.compile(r"running task <TaskInstance: [^.]+\.(\S+) .* ti_id=([0-9a-f-]+)>")
STATE_CHANGE = re.compile(r"new_state=(\w+) .*ti_id=([0-9a-f-]+)")

# Each source's DAG lands it (vitals_feed checks the processor that landed the vitals and
# announces them); the warehouse build (which the raw assets they emit start when Airflow is up)
# validates, builds, gates and publishes.
SOURCE_DAGS = ("vitals_feed", "ehr_batch", "claims_batch", "fhir_api", "research_db")
BUILD_DAG = "warehouse_build"
DAGS = (*SOURCE_DAGS, BUILD_DAG)


DEMO_WRITERS = {
    "ehr_patients": write_patient_extract,
    "ehr": write_extracts,
    # with the institutional claims of the demo's inpatient stays (demo/inpatient_stays.py)
    "claims": partial(write_claims, stays=True),
    "vitals": write_vitals,
}


def _files_landed_before(warehouse: Warehouse, source: str) -> int:
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        return conn.execute(
            "select count(*) from audit.file_ledger where source = %s", (source,)
        ).fetchone()[0]


def _make_demo_data(warehouse: Warehouse) -> None:
    """Demo files for every source whose landing folder is empty and that never landed any."""
    for source, write in DEMO_WRITERS.items():
        landing = settings.LANDING_DIR / source
        if landing.exists() and any(landing.iterdir()):
            continue
        if _files_landed_before(warehouse, source):
            continue
        paths = write(landing)
        log.info("%s: landing folder was empty: wrote %d demo files", source, len(paths))


def _shown(path: Path) -> Path:
    return (
        path.relative_to(settings.PROJECT_ROOT)
        if path.is_relative_to(settings.PROJECT_ROOT)
        else path
    )


def _run_logged(
    command: list[str], env: dict[str, str], log_file_of: Callable[[str], Path], what: str
) -> None:
    """Run `command`, printing task progress as it goes. Its output goes to `log_file_of(what)`;
    a line `== <step>` (orchestration.dag_runner) starts a step, logged to `log_file_of(step)`.
    A failure names the step it failed in and that step's log."""
    started = time.monotonic()
    step, step_started = what, started
    out: IO[str] | None = None

    def begin(new_step: str) -> None:
        nonlocal step, step_started, out
        if out is not None:
            out.close()
            log.info("  done in %.0fs", time.monotonic() - step_started)
        step, step_started = new_step, time.monotonic()
        log_file = log_file_of(step)
        log.info("%s (log: %s)", step, _shown(log_file))
        out = log_file.open("w")

    begin(what)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None and out is not None
    task_ids: dict[str, str] = {}
    try:
        for line in process.stdout:
            if line.startswith(dag_runner.MARKER):
                begin(line.removeprefix(dag_runner.MARKER).strip())
                continue
            out.write(line)
            if match := TASK_INSTANCE.search(line):
                task_ids[match.group(2)] = match.group(1)
            if match := STATE_CHANGE.search(line):
                task = task_ids.get(match.group(2), match.group(2))
                log.info("  [%4.0fs] %s: %s", time.monotonic() - started, task, match.group(1))
        code = process.wait()
    finally:
        out.close()
    if code != 0:
        raise SystemExit(f"{step} failed (exit {code}); see {_shown(Path(out.name))}")
    log.info("  done in %.0fs", time.monotonic() - step_started)


def run_demo() -> bool:
    """The main job on demo data; whether the build passed the gate."""
    if running() is not None:
        # its scheduler would run the same DAGs beside `airflow dags test`
        raise SystemExit(
            "Airflow is running (make up): trigger the DAGs from its UI, or `make down` first"
        )
    log.info("starting the warehouse")
    warehouse = from_environment()
    bootstrap(warehouse)
    dbt_manifest.ensure_manifest()  # Cosmos renders the warehouse build from it

    _make_demo_data(warehouse)
    if not os.environ.get("RESEARCH_DB_HOST"):
        ensure_database(warehouse)
        log.info("research database: %d new demo clinical trials", fill(warehouse))
    fhir_server = None
    if not os.environ.get("FHIR_BASE_URL"):
        fhir_server = DemoFhirServer(
            FhirStore(demo_resources()),
            client_id=os.environ.get("FHIR_CLIENT_ID", "healthcare-warehouse"),
            client_secret=settings.require("FHIR_CLIENT_SECRET"),
        )
        os.environ["FHIR_BASE_URL"] = fhir_server.start()
        # the same server at each run, whatever its port: its cursors hold (ingestion/api_landing)
        os.environ["FHIR_SERVER_KEY"] = DEMO_SERVER_KEY
        log.info("demo FHIR server on %s for this run", os.environ["FHIR_BASE_URL"])

    # no secret in the environment of Airflow nor of the processor: each reads its own
    env = airflow_environment(warehouse)
    logs = settings.VAR_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    try:
        # vitals_feed checks the processor's heartbeat: it runs first, just after the processor
        _run_logged(
            [sys.executable, "-m", "monitoring", "--once"],
            {**env, **write_vitals_processor_secrets()},
            lambda _: logs / "vitals_processor.log",
            "the vitals processor takes the waiting micro-batches",
        )
        remove_vitals_processor_secrets()
        # Airflow's database and the tasks' credentials in it, then each DAG once, in one
        # process (orchestration.dag_runner)
        prepare_airflow_database(warehouse, env)
        _run_logged(
            [sys.executable, "-m", "orchestration.dag_runner", *DAGS],
            env,
            lambda step: logs / f"airflow_{step.replace(' ', '_')}.log",
            "start",
        )
    finally:
        remove_vitals_processor_secrets()
        if fhir_server is not None:
            fhir_server.stop()
        # the WAL this run wrote, out of the PHI zone into the backups, encrypted (no `make up`
        # archiver may be running)
        wal_archive.archive_spooled(wal_archive.spool_dir(settings.EMBEDDED_PGDATA))
        # a tool that copies a file keeps its mode (Cosmos's cached dbt manifest): owner-only again
        make_var_private()

    run_ids = runs_since(warehouse, started)
    if not any(workflow_of(run_id) == BUILD_DAG for run_id in run_ids):
        raise SystemExit(f"the warehouse build did not record a run; see {logs}")
    summary = summarize(warehouse, run_ids)
    print("\n" + render(summary, warehouse))
    return summary.gate.startswith("PASS")
