"""`make up` / `make down`: Airflow's api-server, scheduler, dag-processor and triggerer, and the
vitals processor (monitoring/processor.py), as separate processes in one process group of
their own.

    hcw up      # http://127.0.0.1:8080, user admin
    hcw down

The UI listens on 127.0.0.1 only (AIRFLOW_PORT, default 8080); its admin password is
AIRFLOW_ADMIN_PASSWORD, generated into `.env` by `make setup`. The scheduler and triggerer serve
no logs over the network (the UI reads them from var/airflow/logs). Stopping stops the group and
every process its members started, task processes and the dbt they run included (Airflow starts
each task in a process group of its own). Service logs: var/logs/airflow/.
"""

from __future__ import annotations

import logging
import os
import smtplib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from common import settings
from orchestration import dbt_manifest
from orchestration.airflow_env import airflow_environment, ui_url
from warehouse.bootstrap import bootstrap
from warehouse.connection import Warehouse, from_environment

log = logging.getLogger(__name__)

# each with its arguments; none serves logs on a network port
SERVICES = {
    "api-server": ["--host", "127.0.0.1"],
    "scheduler": ["--skip-serve-logs"],
    "dag-processor": [],
    "triggerer": ["--skip-serve-logs"],
}
# the device feed's only consumer: lands vitals and raises clinical alerts within seconds
VITALS_PROCESSOR = "vitals-processor"


def port() -> int:
    return urlsplit(ui_url()).port


def _group_file() -> Path:
    return settings.AIRFLOW_HOME / "services.pgid"


def _logs_dir() -> Path:
    return settings.VAR_DIR / "logs" / "airflow"


def running_group() -> int | None:
    """The process group `up` started, if its leader still runs (the same process: its start time
    is recorded beside its id, so a reused id after a reboot is not taken for it)."""
    path = _group_file()
    if not path.exists():
        return None
    group, started = path.read_text().split()
    try:
        leader = psutil.Process(int(group))
        if f"{leader.create_time():.2f}" == started and leader.status() != psutil.STATUS_ZOMBIE:
            return int(group)
    except psutil.Error:
        pass
    path.unlink()
    return None


def _group_and_descendants(group: int) -> list[psutil.Process]:
    """The group's processes and every process they started, wherever its process group."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group:
                members += [process, *process.children(recursive=True)]
        except (ProcessLookupError, psutil.Error):
            continue
    return list({process.pid: process for process in members}.values())


def services_environment(warehouse: Warehouse) -> dict[str, str]:
    return {
        **airflow_environment(warehouse),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port()),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{ui_url()}/execution/",
    }


def _healthy(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{ui_url()}/api/v2/monitor/health", timeout=5) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(1)
    return False


def _check_smtp() -> None:
    """Say so now if the alert emails cannot go out (they would only be logged)."""
    settings.load_env()
    host, smtp_port = os.environ.get("SMTP_HOST"), int(os.environ.get("SMTP_PORT", "25"))
    try:
        with smtplib.SMTP(host or "", smtp_port, timeout=5):
            return
    except (OSError, smtplib.SMTPException) as error:
        log.warning(
            "WARNING: no SMTP server answers at %s:%s (%s): failure, recovery and deadline emails"
            " will only be logged; set SMTP_* in .env (docs/runbook.md)",
            host, smtp_port, type(error).__name__,
        )  # fmt: skip


def up(timeout: float = 180, prepare: Callable[[Warehouse], None] | None = None) -> None:
    """Start the services; `prepare(warehouse)` first, once the warehouse is up (the command line
    passes the demo research database's creation)."""
    if running_group() is not None:
        log.info("Airflow is already running: %s", ui_url())
        return
    warehouse = from_environment()
    bootstrap(warehouse)
    if prepare is not None:
        prepare(warehouse)
    dbt_manifest.ensure_manifest()
    env = services_environment(warehouse)
    airflow = str(settings.VENV_BIN / "airflow")
    logs = _logs_dir()
    logs.mkdir(parents=True, exist_ok=True)
    migrate = subprocess.run(
        [airflow, "db", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    if migrate.returncode != 0:
        raise SystemExit(f"airflow db migrate failed:\n{migrate.stdout[-2000:]}{migrate.stderr}")
    group = None
    commands = {service: [airflow, service, *arguments] for service, arguments in SERVICES.items()}
    commands["api-server"] += ["--port", str(port())]
    commands[VITALS_PROCESSOR] = [sys.executable, "-m", "cli", "processor"]
    for service, command in commands.items():
        with (logs / f"{service}.log").open("a") as out:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=settings.PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # the first starts a new process group; the others join it
                process_group=0 if group is None else group,
            )
        if group is None:
            group = process.pid
            started = psutil.Process(group).create_time()
            _group_file().write_text(f"{group} {started:.2f}\n")
        log.info("started %s (pid %d)", service, process.pid)
    if not _healthy(timeout):
        down()
        raise SystemExit(f"Airflow's api-server did not answer within {timeout:.0f}s; see {logs}")
    _check_smtp()
    log.info(
        "Airflow is up: %s (user admin, password AIRFLOW_ADMIN_PASSWORD in .env); logs in %s",
        ui_url(),
        logs,
    )


def down(timeout: float = 30) -> None:
    group = running_group()
    if group is None:
        log.info("Airflow is not running")
        return
    processes = _group_and_descendants(group)
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        log.warning("%s (pid %d) did not stop: killed", process.name(), process.pid)
        process.kill()
    psutil.wait_procs(alive, timeout=10)
    _group_file().unlink(missing_ok=True)
    log.info("Airflow stopped (%d processes)", len(processes))
