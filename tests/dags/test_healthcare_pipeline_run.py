"""`airflow dags test` of the main DAG: real task runs, from landed files to the published fact."""

from __future__ import annotations

import psycopg
import pytest

from ingestion.demo.claims_files import write_claims
from ingestion.demo.ehr_extracts import write_extracts
from ingestion.demo.vitals_files import write_vitals
from tests.dags.airflow_cli import run_airflow

pytestmark = pytest.mark.e2e


def test_airflow_dags_test_lands_builds_gates_and_publishes(test_warehouse, airflow_env):
    write_extracts(test_warehouse.landing_dir / "ehr", files=2, rows=50, defects_per_file=2)
    write_claims(test_warehouse.landing_dir / "claims", files=1, claims=20)
    write_vitals(test_warehouse.landing_dir / "vitals", files=2, readings=30)
    run = run_airflow(airflow_env, "dags", "test", "healthcare_pipeline")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]

    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("analyst")) as conn:
        published = conn.execute("select count(*) from analytics.fct_encounters").fetchone()[0]
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        run_id, states = conn.execute(
            """
            select runs.run_id, array_agg(distinct results.status)
            from audit.pipeline_runs as runs
            join audit.dbt_node_results as results on results.run_id = runs.run_id
            group by runs.run_id
            """
        ).fetchone()
        gate = conn.execute(
            "select passed from audit.gate_results where run_id = %s", (run_id,)
        ).fetchone()[0]
        pulls = dict(
            conn.execute(
                "select source, sum(rows_loaded) from audit.api_pulls where run_id = %s"
                " group by source",
                (run_id,),
            ).fetchall()
        )
    assert published == 96
    assert run_id.startswith("manual__")
    assert set(states) <= {"success", "pass"}
    assert gate is True
    assert pulls == {"fhir": 5 + 10 + 10 + 40, "research": 20}
