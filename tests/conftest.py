"""Shared fixtures: a throwaway PostgreSQL per test module, wired in as the warehouse.

Each server is a real embedded PostgreSQL 18 on a free port, with fresh role passwords and a var
folder of its own, so no test touches the project's own warehouse, `.env` or `var/`.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingestion import settings
from ingestion.setup_env import GENERATED
from ingestion.warehouse import embedded
from ingestion.warehouse.bootstrap import bootstrap
from ingestion.warehouse.connection import Warehouse, dbt_environment, from_environment


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class TestWarehouse:
    warehouse: Warehouse
    var_dir: Path

    @property
    def landing_dir(self) -> Path:
        return self.var_dir / "landing"

    def dbt(self, *args: str, build_schema: str, run_id: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            **dbt_environment(self.warehouse),
            "DBT_BUILD_SCHEMA": build_schema,
            "PIPELINE_RUN_ID": run_id,
            "DBT_TARGET_PATH": str(self.var_dir / "dbt_target"),
            "DBT_LOG_PATH": str(self.var_dir / "dbt_logs"),
        }
        return subprocess.run(
            [str(settings.VENV_BIN / "dbt"), *args],
            cwd=settings.DBT_PROJECT_DIR,
            env=env,
            capture_output=True,
            check=False,
            text=True,
        )


@pytest.fixture(scope="module")
def test_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestWarehouse]:
    """A fresh server and var folder for one test module, set as the project's warehouse."""
    var_dir = tmp_path_factory.mktemp("var")
    pgdata = var_dir / "pgdata"
    admin_password = secrets.token_urlsafe(16)
    port = _free_port()
    embedded.ensure_running(pgdata, port, admin_password)
    patch = pytest.MonkeyPatch()
    for name, make in GENERATED.items():
        patch.setenv(name, make())
    patch.setenv(
        "WAREHOUSE_URL", f"postgresql://postgres:{admin_password}@127.0.0.1:{port}/warehouse"
    )
    patch.setenv("HEALTHCARE_VAR_DIR", str(var_dir))
    patch.setenv("DLT_DATA_DIR", str(var_dir / "dlt"))
    for name, folder in {
        "VAR_DIR": var_dir,
        "LANDING_DIR": var_dir / "landing",
        "ARCHIVE_DIR": var_dir / "archive",
        "QUARANTINE_DIR": var_dir / "quarantine",
        "AIRFLOW_HOME": var_dir / "airflow",
        "DLT_DATA_DIR": var_dir / "dlt",
    }.items():
        patch.setattr(settings, name, folder)
    warehouse = from_environment()
    bootstrap(warehouse)
    try:
        yield TestWarehouse(warehouse, var_dir)
    finally:
        patch.undo()
        embedded.stop(pgdata)
