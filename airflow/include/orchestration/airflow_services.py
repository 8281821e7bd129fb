"""`make up` / `make down`: Airflow's api-server, scheduler, dag-processor and triggerer, and the
vitals processor (monitoring/processor.py), under supervisord, which restarts any of them that
dies (the vitals processor sends clinical alerts: it must not stay down), keeps each one's log in
var/logs/airflow/ and stops them all on `make down`.

    hcw up      # http://127.0.0.1:8080, an account each: hcw users add airflow/users.yml
    hcw down

The UI listens on 127.0.0.1 only (AIRFLOW_PORT, default 8080); each person logs in with their own
account (orchestration/airflow_users.py). The scheduler and triggerer serve
no logs over the network (the UI reads them from var/airflow/logs). supervisord is controlled
through a socket only its owner may open (var/supervisor/, 0700). No service's environment holds
a secret (orchestration.airflow_env): Airflow's are in its owner-only configuration file, the
tasks' credentials in Airflow's database (orchestration.stored_credentials), the vitals
processor's in a file of its own (orchestration.service_secrets).
Stopping stops every service and every process they started, task processes and the dbt they
run included (Airflow starts each task in a process group of its own).
"""

from __future__ import annotations

import logging
import os
import shlex
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
from orchestration.service_secrets import (
    remove_vitals_processor_secrets,
    write_vitals_processor_secrets,
)
from orchestration.stored_credentials import prepare_airflow_database
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
# moves the WAL the embedded server spools into the backups, encrypted (warehouse/wal_archive.py)
WAL_ARCHIVER = "wal-archiver"
GROUP = "services"
# in the environment of every process `up` starts, and so of every process they start: `down`
# finds them by it, whatever became of their parents
MARKER = "HEALTHCARE_WAREHOUSE_SERVICES"


def port() -> int:
    return urlsplit(ui_url()).port


def _supervisor_dir() -> Path:
    return settings.VAR_DIR / "supervisor"


def _config_file() -> Path:
    return _supervisor_dir() / "supervisord.conf"


def _logs_dir() -> Path:
    return settings.VAR_DIR / "logs" / "airflow"


def _commands() -> dict[str, list[str]]:
    airflow = str(settings.VENV_BIN / "airflow")
    commands = {service: [airflow, service, *arguments] for service, arguments in SERVICES.items()}
    commands["api-server"] += ["--port", str(port())]
    commands[VITALS_PROCESSOR] = [sys.executable, "-m", "monitoring"]
    commands[WAL_ARCHIVER] = [str(settings.VENV_BIN / "hcw"), "archive-wal", "--watch"]
    return commands


def _config_value(text: object) -> str:
    """A value for supervisord's configuration, which expands `%(name)s` in its values, some of
    them twice: a path with `%` in it is refused rather than mangled."""
    if "%" in str(text):
        raise SystemExit(f"make up: supervisord cannot take a path with '%' in it: {text}")
    return str(text)


def _supervisor_config(processor_variables: dict[str, str]) -> str:
    """supervisord's configuration: its socket, pid file and log, and one program per service, all
    in one group (stopped together, not one after the other); the vitals processor's
    `processor_variables` added to its environment (where its secrets file is: no secret)."""
    folder, logs = _supervisor_dir(), _logs_dir()
    lines = [
        "[unix_http_server]",
        f"file={_config_value(folder / 'supervisor.sock')}",
        "chmod=0700",
        "[supervisord]",
        f"pidfile={_config_value(folder / 'supervisord.pid')}",
        f"logfile={_config_value(logs / 'supervisord.log')}",
        "logfile_maxbytes=10MB",
        f"directory={_config_value(settings.PROJECT_ROOT)}",
        "umask=077",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "[supervisorctl]",
        f"serverurl=unix://{_config_value(folder / 'supervisor.sock')}",
        f"[group:{GROUP}]",
        f"programs={','.join(_commands())}",
    ]
    for service, command in _commands().items():
        lines += [
            f"[program:{service}]",
            f"command={_config_value(shlex.join(command))}",
            f"directory={_config_value(settings.PROJECT_ROOT)}",
            "autostart=true",
            # restarted whenever it exits, at once; one that keeps failing within its first
            # seconds is retried with a growing pause (1 s, 2 s, ...), for about an hour and a
            # half in all, then left FATAL (supervisord's log and `status` say so)
            "autorestart=true",
            "startsecs=3",
            "startretries=100",
            "stopasgroup=true",
            "killasgroup=true",
            "stopwaitsecs=30",
            "redirect_stderr=true",
            f"stdout_logfile={_config_value(logs / service)}.log",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=3",
        ]
        if service == VITALS_PROCESSOR:
            lines.append(
                "environment="
                + ",".join(
                    f'{name}="{_config_value(value)}"'
                    for name, value in processor_variables.items()
                )
            )
    return "\n".join(lines) + "\n"


def _supervisorctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(settings.VENV_BIN / "supervisorctl"), "-c", str(_config_file()), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def running() -> int | None:
    """supervisord's process id, if `up` started it and it runs."""
    pidfile = _supervisor_dir() / "supervisord.pid"
    try:
        supervisor = psutil.Process(int(pidfile.read_text()))
        if str(_config_file()) in supervisor.cmdline() and supervisor.status() != "zombie":
            return supervisor.pid
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def service_pids() -> dict[str, int]:
    """Each running service's process id, as supervisord reports it."""
    pids = {}
    for line in _supervisorctl("status").stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "RUNNING" and fields[2] == "pid":
            pids[fields[0].removeprefix(f"{GROUP}:")] = int(fields[3].rstrip(","))
    return pids


def started_processes() -> list[psutil.Process]:
    """Every process `up` started and they started (supervisord, the services, task processes, the
    dbt they run), found by the marker in their environment: also those whose parent died."""
    config = str(_config_file())
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(MARKER) == config:
                found.append(process)
        except psutil.Error:
            continue
    return found


def services_environment(warehouse: Warehouse) -> dict[str, str]:
    return {
        **airflow_environment(warehouse),
        MARKER: str(_config_file()),
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
    if running() is not None:
        log.info("Airflow is already running: %s", ui_url())
        return
    warehouse = from_environment()
    bootstrap(warehouse)
    if prepare is not None:
        prepare(warehouse)
    dbt_manifest.ensure_manifest()
    env = services_environment(warehouse)
    logs = _logs_dir()
    logs.mkdir(parents=True, exist_ok=True)
    prepare_airflow_database(warehouse, env)
    folder = _supervisor_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    _config_file().write_text(_supervisor_config(write_vitals_processor_secrets()))
    _config_file().chmod(0o600)
    # supervisord daemonizes; the services inherit its environment (never written to a file)
    started = subprocess.run(
        [str(settings.VENV_BIN / "supervisord"), "-c", str(_config_file())],
        env=env,
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        raise SystemExit(f"supervisord did not start:\n{started.stdout}{started.stderr}")
    if not _healthy(timeout):
        down()
        raise SystemExit(f"Airflow's api-server did not answer within {timeout:.0f}s; see {logs}")
    for service, pid in sorted(service_pids().items()):
        log.info("running %s (pid %d)", service, pid)
    _check_smtp()
    if os.geteuid() == 0:
        log.warning(
            "WARNING: Airflow's services run as root: run make up as a dedicated account that"
            ' is not root (docs/runbook.md, "What a task holds")'
        )
    log.info(
        "Airflow is up: %s (an account each: hcw users add airflow/users.yml); logs in %s",
        ui_url(),
        logs,
    )


def down(timeout: float = 90) -> None:
    supervisor = running()
    if supervisor is None:
        log.info("Airflow is not running")
        return
    processes = started_processes()
    # supervisord stops the services together (SIGTERM to each one's process group, SIGKILL after
    # 30 s), then exits
    if _supervisorctl("shutdown").returncode != 0:
        log.warning("supervisorctl shutdown failed: stopping supervisord with SIGTERM")
        psutil.Process(supervisor).terminate()
    psutil.wait_procs([p for p in processes if p.pid == supervisor], timeout=timeout)
    # what outlived them: task processes in process groups of their own, the dbt they ran
    leftovers = [process for process in started_processes() if process.is_running()]
    for process in leftovers:
        try:
            log.warning("%s (pid %d) did not stop: killed", process.name(), process.pid)
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(leftovers, timeout=10)
    remove_vitals_processor_secrets()
    log.info("Airflow stopped (%d processes)", len(processes))
