"""`make run`: start the warehouse, make demo data if there is none, let the vitals processor take
the waiting micro-batches (`--once`), run each source's DAG and then the warehouse build once
through Airflow (`airflow dags test`), and print what they did.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from cli.summary import render, runs_since, summarize
from common import settings
from demo.claims_files import write_claims
from demo.ehr_extracts import write_extracts, write_patient_extract
from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, FhirStore
from demo.research_db import ensure_database, fill
from demo.vitals_files import write_vitals
from orchestration import dbt_manifest
from orchestration.airflow_env import airflow_environment
from orchestration.airflow_services import running
from warehouse.bootstrap import bootstrap
from warehouse.connection import Warehouse, from_environment
from warehouse.runs import workflow_of

log = logging.getLogger("make run")

TASK_INSTANCE = re.compile(r"running task <TaskInstance: [^.]+\.(\S+) .* ti_id=([0-9a-f-]+)>")
STATE_CHANGE = re.compile(r"new_state=(\w+) .*ti_id=([0-9a-f-]+)")

# Each source's DAG lands it (vitals_feed checks the processor that landed the vitals and
# announces them); the warehouse build (which the raw assets they emit start when Airflow is up)
# validates, builds, gates and publishes.
SOURCE_DAGS = ("ehr_batch", "claims_batch", "vitals_feed", "fhir_api", "research_db")
BUILD_DAG = "warehouse_build"


DEMO_WRITERS = {
    "ehr_patients": write_patient_extract,
    "ehr": write_extracts,
    "claims": write_claims,
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


def _airflow(args: list[str], env: dict[str, str], log_file: Path, what: str) -> None:
    """Run an Airflow command, its output to `log_file`, printing task progress as it goes."""
    _run_logged([str(settings.VENV_BIN / "airflow"), *args], env, log_file, what)


def _run_logged(command: list[str], env: dict[str, str], log_file: Path, what: str) -> None:
    started = time.monotonic()
    shown = (
        log_file.relative_to(settings.PROJECT_ROOT)
        if log_file.is_relative_to(settings.PROJECT_ROOT)
        else log_file
    )
    log.info("%s (log: %s)", what, shown)
    with log_file.open("w") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        task_ids: dict[str, str] = {}
        for line in process.stdout:
            out.write(line)
            if match := TASK_INSTANCE.search(line):
                task_ids[match.group(2)] = match.group(1)
            if match := STATE_CHANGE.search(line):
                task = task_ids.get(match.group(2), match.group(2))
                log.info("  [%4.0fs] %s: %s", time.monotonic() - started, task, match.group(1))
        code = process.wait()
    if code != 0:
        raise SystemExit(f"{what} failed (exit {code}); see {log_file}")
    log.info("  done in %.0fs", time.monotonic() - started)


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
        log.info("demo FHIR server on %s for this run", os.environ["FHIR_BASE_URL"])

    env = airflow_environment(warehouse)
    logs = settings.VAR_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    _airflow(
        ["db", "migrate"], env, logs / "airflow_db_migrate.log", "preparing Airflow's database"
    )
    started = datetime.now(UTC)
    try:
        for dag_id in (*SOURCE_DAGS, BUILD_DAG):
            if dag_id == "vitals_feed":  # checks the processor's heartbeat: just after it ran
                _run_logged(
                    [sys.executable, "-m", "cli", "processor", "--once"],
                    env,
                    logs / "vitals_processor.log",
                    "the vitals processor takes the waiting micro-batches",
                )
            log_file = logs / f"airflow_dags_test_{dag_id}.log"
            _airflow(["dags", "test", dag_id], env, log_file, f"running {dag_id}")
    finally:
        if fhir_server is not None:
            fhir_server.stop()

    run_ids = runs_since(warehouse, started)
    if not any(workflow_of(run_id) == BUILD_DAG for run_id in run_ids):
        raise SystemExit(f"the warehouse build did not record a run; see {logs}")
    summary = summarize(warehouse, run_ids)
    print("\n" + render(summary, warehouse))
    return summary.gate.startswith("PASS")
