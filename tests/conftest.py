"""Shared fixtures: a throwaway PostgreSQL per test module, wired in as the warehouse.

Each server is a real embedded PostgreSQL 18 on a free port, with fresh role passwords and a var
folder of its own, so no test touches the project's own warehouse, `.env` or `var/`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common import settings
from warehouse.connection import Warehouse, dbt_environment
from warehouse.throwaway import throwaway_warehouse


@dataclass
class TestWarehouse:
    warehouse: Warehouse
    var_dir: Path

    @property
    def landing_dir(self) -> Path:
        return self.var_dir / "landing"

    def dbt(
        self, *args: str, build_schema: str, run_id: str, target: str = "dbt_target"
    ) -> subprocess.CompletedProcess:
        """Run dbt on this warehouse; its manifest and compiled SQL go to var_dir/`target`."""
        env = {
            **os.environ,
            **dbt_environment(self.warehouse),
            "DBT_BUILD_SCHEMA": build_schema,
            "PIPELINE_RUN_ID": run_id,
            "DBT_TARGET_PATH": str(self.var_dir / target),
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
    with throwaway_warehouse(var_dir) as warehouse:
        yield TestWarehouse(warehouse, var_dir)
