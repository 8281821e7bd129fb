"""Airflow against the module's throwaway warehouse: its metadata database migrated, its env ready."""

from __future__ import annotations

import pytest

from ingestion.airflow_env import airflow_environment
from tests.dags.airflow_cli import run_airflow


@pytest.fixture(scope="module")
def airflow_env(test_warehouse) -> dict:
    env = airflow_environment(test_warehouse.warehouse)
    migrate = run_airflow(env, "db", "migrate")
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    return env
