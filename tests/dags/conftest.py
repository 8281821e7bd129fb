"""Airflow against the module's throwaway warehouse: its metadata database migrated, its env ready."""

from __future__ import annotations

import subprocess

import pytest

from ingestion import settings
from ingestion.airflow_env import airflow_environment


def run_airflow(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(settings.VENV_BIN / "airflow"), *args],
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def airflow_env(test_warehouse) -> dict:
    env = airflow_environment(test_warehouse.warehouse)
    migrate = run_airflow(env, "db", "migrate")
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    return env
