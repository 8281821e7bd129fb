"""Where the project keeps its files, and the settings read from the environment and `.env`."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# the generated secrets and settings; elsewhere for a deployment that keeps them elsewhere
ENV_FILE = Path(os.environ.get("HEALTHCARE_ENV_FILE", PROJECT_ROOT / ".env"))

# Everything the running product writes lives under one git-ignored folder.
VAR_DIR = Path(os.environ.get("HEALTHCARE_VAR_DIR", PROJECT_ROOT / "var"))
LANDING_DIR = Path(os.environ.get("LANDING_DIR", VAR_DIR / "landing"))
ARCHIVE_DIR = Path(os.environ.get("ARCHIVE_DIR", VAR_DIR / "archive"))
QUARANTINE_DIR = Path(os.environ.get("QUARANTINE_DIR", VAR_DIR / "quarantine"))
EMBEDDED_PGDATA = VAR_DIR / "pgdata"
# the embedded server's log, the record of access among it (warehouse/access_log.py), in its folder
SERVER_LOG_FOLDER = "server_log"
AIRFLOW_HOME = VAR_DIR / "airflow"
DLT_DATA_DIR = VAR_DIR / "dlt"
# Backups (warehouse/backup.py): encrypted, so they may live on another disk or mount, and should
BACKUP_DIR = Path(os.environ.get("BACKUP_DIR") or VAR_DIR / "backups")

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DAGS_DIR = PROJECT_ROOT / "airflow" / "dags"
INCLUDE_DIR = PROJECT_ROOT / "airflow" / "include"  # the orchestration glue (package orchestration)
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"


# The tools' usage reporting phones home; this machine, and a hospital's, may not.
NO_TELEMETRY = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "GX_ANALYTICS_ENABLED": "False",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "SCARF_ANALYTICS": "false",
}


# `.env` as last read: (what identifies that version of the file, its variables)
_env_file_read: tuple[tuple[int, ...], dict[str, str]] | None = None


def load_env() -> None:
    """Put `.env`'s variables into the environment; variables already set win over the file.

    The file is parsed again only when it changed: every `require` calls this, and an Airflow
    task's callbacks several times (about 2 ms a parse)."""
    global _env_file_read
    try:
        stat = ENV_FILE.stat()
    except FileNotFoundError:
        variables: dict[str, str] = {}
    else:
        # a file rewritten in place or replaced (another inode) changes its ctime or inode
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
        if _env_file_read is None or _env_file_read[0] != seen:
            parsed = dotenv_values(ENV_FILE)
            _env_file_read = (seen, {k: v for k, v in parsed.items() if v is not None})
        variables = _env_file_read[1]
    for name, value in (NO_TELEMETRY | variables).items():
        os.environ.setdefault(name, value)


def env_file_values(names: list[str]) -> dict[str, str]:
    """Only `names` of `.env`, put nowhere: for a person's command, which must not hold the
    other secrets. Nothing when the file is absent or this user may not read it (on a server,
    `.env` is the service account's, owner-only)."""
    parsed = env_file_values_all()
    return {name: parsed[name] for name in names if name in parsed}


# Set in the environment of Airflow's services and tasks, which have no `.env` (HEALTHCARE_ENV_FILE
# is empty there): a secret a task uses comes from Airflow's store, where `hcw up` and `hcw run` put
# it (orchestration/stored_credentials.py), read when the task asks for it.
SECRETS_FROM_AIRFLOW = "HEALTHCARE_SECRETS_FROM_AIRFLOW"


def secret(name: str) -> str | None:
    """The secret setting `name` (a client secret, a password), None when it is not set: from
    the environment or `.env`, or, in an Airflow task, from Airflow's variable of that name."""
    if os.environ.get(SECRETS_FROM_AIRFLOW):
        from airflow.sdk import Variable

        return Variable.get(name, default=None) or None
    load_env()
    return os.environ.get(name) or None


def env_file_values_all() -> dict[str, str]:
    """Every variable of `.env` (nothing when it is absent or unreadable), put nowhere."""
    try:
        parsed = dotenv_values(ENV_FILE) if ENV_FILE.is_file() else {}
    except PermissionError:
        return {}
    return {name: value for name, value in parsed.items() if value}


def require_secret(name: str) -> str:
    """The secret setting `name`, which must be present (settings.secret says from where)."""
    value = secret(name)
    if not value:
        where = (
            "Airflow's variables (hcw up stores it)"
            if os.environ.get(SECRETS_FROM_AIRFLOW)
            else ".env"
        )
        raise RuntimeError(f"{name} is not set in {where}: run `make setup`, or export it")
    return value


def require(name: str) -> str:
    """The value of a setting that must be present, with a message that says how to get it."""
    load_env()
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run `make setup` to generate .env, or export it")
    return value
