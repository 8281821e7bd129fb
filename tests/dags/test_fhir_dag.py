"""The `fhir_api` DAG pulls each configured FHIR server in a task of its own (mapped over
ingestion/fhir_servers.yml, named by the server's key), each reconciled in audit.api_pulls with
its server named; a run with nothing new on either skips both and announces nothing."""

from __future__ import annotations

import os

import psycopg
import pytest

from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, FhirStore
from ingestion.sources.fhir_api import server_key
from orchestration.stored_credentials import prepare_airflow_database
from tests.dags.airflow_cli import DagRunner
from tests.ingestion.fhir_pulls import rows
from warehouse.connection import AIRFLOW_DATABASE

pytestmark = pytest.mark.e2e

SECRETS = {"NORTH_FHIR_SECRET": "north-secret", "SOUTH_FHIR_SECRET": "south-secret"}


@pytest.fixture(scope="module")
def two_servers(test_warehouse, airflow_env, tmp_path_factory):
    north = DemoFhirServer(
        FhirStore(demo_resources(patients=3)), "north", SECRETS["NORTH_FHIR_SECRET"]
    )
    south = DemoFhirServer(
        FhirStore(demo_resources(patients=2, practitioners=2, seed=5)),
        "south",
        SECRETS["SOUTH_FHIR_SECRET"],
    )
    urls = north.start(), south.start()
    config = tmp_path_factory.mktemp("fhir") / "fhir_servers.yml"
    config.write_text(
        "servers:\n"
        f"  - {{base_url: '{urls[0]}', client_id: north, client_secret: NORTH_FHIR_SECRET}}\n"
        f"  - {{base_url: '{urls[1]}', client_id: south, client_secret: SOUTH_FHIR_SECRET}}\n"
    )
    env = {**airflow_env, "FHIR_SERVERS_FILE": str(config)}
    # each server's client secret stored for the tasks, as hcw up stores them from .env
    os.environ.update(SECRETS)
    try:
        prepare_airflow_database(test_warehouse.warehouse, env)
    finally:
        for name in SECRETS:
            del os.environ[name]
    yield env, urls
    north.stop()
    south.stop()


def _mapped_tasks(test_warehouse) -> list[tuple]:
    warehouse = test_warehouse.warehouse
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE)
    ) as conn:
        return conn.execute(
            """
            select map_index, rendered_map_index, state from task_instance
            where dag_id = 'fhir_api' and task_id = 'land_fhir_server' and run_id = (
                select run_id from dag_run where dag_id = 'fhir_api' order by id desc limit 1
            )
            order by map_index
            """
        ).fetchall()


def test_each_configured_server_is_pulled_in_a_task_of_its_own(test_warehouse, two_servers):
    env, (north, south) = two_servers
    with DagRunner(env) as airflow:
        airflow.run_dag("fhir_api")
        first = _mapped_tasks(test_warehouse)
        airflow.run_dag("fhir_api")  # again: nothing new on either
        again = _mapped_tasks(test_warehouse)
    assert first == [
        (0, server_key(north), "success"),
        (1, server_key(south), "success"),
    ]
    pulled = dict(
        rows(
            test_warehouse,
            "select server, sum(rows_loaded) from audit.api_pulls where source = 'fhir' group by 1",
        )
    )
    assert pulled == {
        server_key(north): len(demo_resources(patients=3)),
        server_key(south): len(demo_resources(patients=2, practitioners=2, seed=5)),
    }
    # again: nothing new on either, both skipped
    assert [state for _, _, state in again] == ["skipped", "skipped"]
