"""Airflow against the module's throwaway warehouse: its metadata database migrated, the demo
research database and a local FHIR server for the API sources, a local SMTP server for the alert
emails, shorter retries, and its env ready.
"""

from __future__ import annotations

import os

import pytest
import yaml

from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, FhirStore
from demo.research_db import ensure_database, fill
from orchestration import dag_settings
from orchestration.airflow_env import airflow_environment
from orchestration.stored_credentials import prepare_airflow_database
from tests.dags.airflow_cli import DagRunner
from tests.dags.smtp_sink import SmtpSink

# The product's settings, but a failed task retried once after a second, not three times over
# minutes, so that a failure reaches its email within a test
FAST_RETRIES = {"retries": 1, "retry_delay_seconds": 1, "max_retry_delay_seconds": 2}


def orchestration_config(folder, **dags: dict) -> str:
    """airflow/orchestration.yml with FAST_RETRIES and `dags`' settings over it; its path. A
    file a test writes is complete when written: its DAG runs land it at once (settle_seconds 0,
    unless `dags` says otherwise; tests/ingestion/test_settled_files.py tests the rule)."""
    config = yaml.safe_load(dag_settings.CONFIG_FILE.read_text())
    config["defaults"].update(FAST_RETRIES)
    config["dags"]["landing_watch"]["settle_seconds"] = 0
    for dag_id, overrides in dags.items():
        config["dags"][dag_id].update(overrides)
    path = folder / "orchestration.yml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(scope="module")
def smtp_sink():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def airflow_env(test_warehouse, smtp_sink):
    ensure_database(test_warehouse.warehouse)
    fill(test_warehouse.warehouse, trials=20)
    server = DemoFhirServer(
        FhirStore(demo_resources(patients=5)),
        "healthcare-warehouse",
        os.environ["FHIR_CLIENT_SECRET"],
    )
    env = {
        **airflow_environment(test_warehouse.warehouse),
        **smtp_sink.env,
        "FHIR_BASE_URL": server.start(),
        "ORCHESTRATION_CONFIG": orchestration_config(
            test_warehouse.var_dir, maintenance={"backups_kept": 2}
        ),
    }
    # Airflow's database and the tasks' credentials, as make run starts
    prepare_airflow_database(test_warehouse.warehouse, env)
    yield env
    server.stop()


@pytest.fixture(scope="module")
def dag_runner(airflow_env):
    """One Airflow process for the module's DAG runs in `airflow_env` (tests.dags.dag_server)."""
    runner = DagRunner(airflow_env)
    yield runner
    runner.close()
