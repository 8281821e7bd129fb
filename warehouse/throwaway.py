"""A throwaway warehouse: a fresh embedded PostgreSQL on a free port, set up as the project's
warehouse for as long as the context lasts. For tests and benchmarks, never for real data.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import settings
from common.env_file import GENERATED
from warehouse import embedded
from warehouse.bootstrap import bootstrap
from warehouse.connection import Warehouse, from_environment

VAR_FOLDERS = {
    "VAR_DIR": "",
    "LANDING_DIR": "landing",
    "ARCHIVE_DIR": "archive",
    "QUARANTINE_DIR": "quarantine",
    "AIRFLOW_HOME": "airflow",
    "DLT_DATA_DIR": "dlt",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def throwaway_warehouse(var_dir: Path) -> Iterator[Warehouse]:
    """Start a server under `var_dir`, point the environment and `settings` at it, then undo."""
    saved_env = dict(os.environ)
    saved_settings = {name: getattr(settings, name) for name in VAR_FOLDERS}
    pgdata = var_dir / "pgdata"
    admin_password = secrets.token_urlsafe(16)
    port = free_port()
    embedded.ensure_running(pgdata, port, admin_password)
    try:
        for name, make in GENERATED.items():
            os.environ[name] = make()
        os.environ["WAREHOUSE_URL"] = (
            f"postgresql://postgres:{admin_password}@127.0.0.1:{port}/warehouse"
        )
        os.environ["HEALTHCARE_VAR_DIR"] = str(var_dir)
        os.environ["DLT_DATA_DIR"] = str(var_dir / "dlt")
        for name, folder in VAR_FOLDERS.items():
            setattr(settings, name, var_dir / folder if folder else var_dir)
        warehouse = from_environment()
        bootstrap(warehouse)
        yield warehouse
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        for name, value in saved_settings.items():
            setattr(settings, name, value)
        embedded.stop(pgdata)
