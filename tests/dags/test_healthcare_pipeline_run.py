"""`airflow dags test` of the main DAG: real task runs, from landed files to the published fact."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

import psycopg
import pytest

from expectations import report
from ingestion import pipeline
from ingestion.demo.claims_files import write_claims
from ingestion.demo.ehr_extracts import write_extracts, write_patient_extract
from ingestion.demo.vitals_files import write_vitals
from ingestion.warehouse.build_plan import record_built
from ingestion.warehouse.phi_scan import (
    IdentifierIndex,
    landed_file_names,
    raw_identifiers,
    scan_files,
)
from tests.dags.airflow_cli import run_airflow

pytestmark = pytest.mark.e2e


def test_airflow_dags_test_lands_builds_gates_and_publishes(test_warehouse, airflow_env):
    write_patient_extract(test_warehouse.landing_dir / "ehr_patients")
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
            "select passed from audit.gate_results"
            " where run_id = %s and checkpoint = 'publish_gate'",
            (run_id,),
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


# Everything a device reading flows through (tests/warehouse/test_build_plan.py).
VITALS_MODELS = {
    "stg_vitals__readings",
    "device_crosswalk",
    "deid_vital_readings",
    "fct_vital_signs",
    "fct_vital_signs_hourly",
    "dim_facility",
}


def _published_readings(test_warehouse) -> int:
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("analyst")) as conn:
        return conn.execute("select count(*) from analytics.fct_vital_signs").fetchone()[0]


def test_a_run_with_only_new_readings_runs_only_the_vitals_models(test_warehouse, airflow_env):
    # the other build schema catches up outside Airflow, so that both have a complete build
    other = pipeline.choose_build_schema()
    planned = pipeline.plan_build(other, "catch_up")
    assert planned["nodes"] is None  # its first build: everything
    result = test_warehouse.dbt("build", build_schema=other, run_id="catch_up")
    assert result.returncode == 0, result.stdout[-3000:]
    record_built(test_warehouse.warehouse, other, "catch_up")
    before = _published_readings(test_warehouse)

    an_hour_later = datetime(2024, 3, 15, 15, 0, tzinfo=UTC)  # the first run's start, plus one
    write_vitals(test_warehouse.landing_dir / "vitals", files=1, readings=30, start=an_hour_later)
    run = run_airflow(airflow_env, "dags", "test", "healthcare_pipeline")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]

    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        run_id, build_schema = conn.execute(
            "select run_id, build_schema from audit.publications order by published_at desc limit 1"
        ).fetchone()
        built = {
            unique_id.split(".")[-1]
            for (unique_id,) in conn.execute(
                "select distinct unique_id from audit.dbt_node_results"
                " where run_id = %s and resource_type = 'model'",
                (run_id,),
            ).fetchall()
        }
    assert build_schema == other
    assert built == VITALS_MODELS
    assert _published_readings(test_warehouse) > before
    assert os.path.exists(test_warehouse.var_dir / "dbt_plan" / other / "sources.json")


PUBLISHED_FACT = (
    "select count(*), md5(string_agg(fct::text, ',' order by encounter_key))"
    " from analytics.fct_encounters as fct"
)


def test_a_blocked_run_in_airflow_fails_publishes_nothing_and_logs_no_identifier(
    test_warehouse, airflow_env, tmp_path
):
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("analyst")) as conn:
        before = conn.execute(PUBLISHED_FACT).fetchone()
    [extract] = write_extracts(
        test_warehouse.landing_dir / "ehr", files=1, rows=20, defects_per_file=0, seed=41,
        first_day=date(2024, 8, 1),
    )  # fmt: skip
    lines = extract.read_text().splitlines()
    for record in (4, 11, 15):  # 3 of 20 visits in 1850: validity 0.85 < 0.90
        fields = lines[record].split(",")
        fields[1] = "1850-02-01"
        lines[record] = ",".join(fields)
    extract.write_text("\n".join(lines) + "\n")

    run = run_airflow(airflow_env, "dags", "test", "healthcare_pipeline")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "[visit_date_is_plausible] on raw_ehr.encounters: 3 of 20 rows fail" in output
    for record in (4, 11, 15):
        assert f"{extract.name}#{record}" in output

    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("analyst")) as conn:
        assert conn.execute(PUBLISHED_FACT).fetchone() == before
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        run_id = conn.execute(
            "select run_id from audit.pipeline_runs order by started_at desc limit 1"
        ).fetchone()[0]
        published = conn.execute(
            "select count(*) from audit.publications where run_id = %s", (run_id,)
        ).fetchone()[0]
        held = conn.execute(
            "select record_position, rule from quarantine.quarantined_records"
            " where run_id = %s and stage = 'after_landing' order by 1",
            (run_id,),
        ).fetchall()
    assert published == 0
    assert held == [(record, "visit_date_is_plausible") for record in (4, 11, 15)]

    # Everyone reads the report: built after the failure, it and the task logs hold no
    # identifier value (the quarantined records' values included)
    docs, page = report.build_data_docs(), report.build_report(test_warehouse.warehouse)
    assert "FAIL" in page.read_text()
    # `airflow dags test` runs every task in its own process and writes the task logs to its
    # output (make run keeps it in var/logs/airflow_dags_test.log): the failing gate's among them
    task_logs = tmp_path / "airflow_dags_test.log"
    task_logs.write_text(output)
    assert "quality_gate" in output and "GateFailed" in output
    index = IdentifierIndex(raw_identifiers(test_warehouse.warehouse))
    assert index.count > 500
    folders = [docs.parent, page.parent, task_logs, test_warehouse.var_dir / "airflow" / "logs"]
    assert scan_files(folders, index, landed_file_names(test_warehouse.warehouse)) == []
