"""Airflow against the module's throwaway warehouse: its metadata database migrated, the demo
research database and a local FHIR server for the API sources, and its env ready.
"""

from __future__ import annotations

import os

import pytest

from ingestion.airflow_env import airflow_environment
from ingestion.demo.fhir_resources import demo_resources
from ingestion.demo.fhir_server import DemoFhirServer, FhirStore
from ingestion.demo.research_db import ensure_database, fill
from tests.dags.airflow_cli import run_airflow


@pytest.fixture(scope="module")
def airflow_env(test_warehouse):
    ensure_database(test_warehouse.warehouse)
    fill(test_warehouse.warehouse, trials=20)
    server = DemoFhirServer(
        FhirStore(demo_resources(patients=5)),
        "healthcare-warehouse",
        os.environ["FHIR_CLIENT_SECRET"],
    )
    env = {**airflow_environment(test_warehouse.warehouse), "FHIR_BASE_URL": server.start()}
    migrate = run_airflow(env, "db", "migrate")
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    yield env
    server.stop()
