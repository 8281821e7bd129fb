"""The thin path end to end on a throwaway PostgreSQL: land, validate, dbt, gate, publish, and who
sees what (tests/expectations/test_gate.py: a gate that fails)."""

from __future__ import annotations

import json
import shutil

import psycopg
import pytest

from demo.ehr_extracts import write_extracts
from orchestration import dbt_manifest, pipeline
from tests.pipeline_steps import build_and_publish

# the one end-to-end path `make test-fast` keeps
pytestmark = [pytest.mark.e2e, pytest.mark.thin_path]


def run_pipeline(tw, run_id: str) -> dict:
    counts = pipeline.land_files("ehr", run_id, settle_seconds=0)
    # only the EHR has landed: every other source's staging builds empty
    return {**counts, "build_schema": build_and_publish(tw, run_id)}


def query(tw, role: str, statement: str) -> list[tuple]:
    with psycopg.connect(**tw.warehouse.connect_kwargs(role)) as conn:
        return conn.execute(statement).fetchall()


@pytest.fixture(scope="module")
def first_run(test_warehouse):
    write_extracts(test_warehouse.landing_dir / "ehr", files=3, rows=120, defects_per_file=4)
    return run_pipeline(test_warehouse, "run_1")


def test_every_row_received_is_loaded_or_quarantined(test_warehouse, first_run):
    assert first_run["received"] == 360
    assert first_run["quarantined"] == 12
    assert first_run["loaded"] + first_run["quarantined"] == first_run["received"]
    raw = query(test_warehouse, "steward", "select count(*) from raw_ehr.encounters")[0][0]
    quarantined = query(
        test_warehouse, "steward", "select count(*) from quarantine.rejected_records"
    )[0][0]
    assert (raw, quarantined) == (first_run["loaded"], first_run["quarantined"])


def test_quarantined_row_keeps_its_file_position_and_rule_but_reason_holds_no_value(
    test_warehouse, first_run
):
    rows = query(
        test_warehouse,
        "steward",
        "select file_name, record_position, rule, reason, record->>'patient_id'"
        " from quarantine.rejected_records",
    )
    for file_name, position, rule, reason, patient_id in rows:
        assert file_name.startswith("ehr_") and position >= 1
        assert reason.startswith(rule)
        if patient_id:
            assert patient_id not in reason


def test_the_build_ran_every_dbt_unit_test_and_each_passed(test_warehouse, first_run):
    manifest = json.loads(dbt_manifest.MANIFEST.read_text())
    statuses = query(
        test_warehouse,
        "steward",
        "select status, count(*) from audit.dbt_node_results"
        " where run_id = 'run_1' and resource_type = 'unit_test' group by status",
    )
    assert statuses == [("pass", len(manifest["unit_tests"]))]


def test_analyst_reads_the_published_fact(test_warehouse, first_run):
    published = query(test_warehouse, "analyst", "select count(*) from analytics.fct_encounters")
    assert published[0][0] == first_run["loaded"]


@pytest.mark.parametrize(
    "relation",
    [
        "raw_ehr.encounters",
        "staging.stg_ehr__encounters",
        "staging.stg_ehr__patients",
        "intermediate.int_patient_identities_resolved",
        "intermediate.int_patients_keyed",
        "crosswalk.patient_crosswalk",
        "crosswalk.patient_anchors",
        "crosswalk.identifier_crosswalk",
        "crosswalk.device_crosswalk",
        "reference.restricted_zip3",
        "snapshots.patient_snapshot",
        "build_blue.fct_encounters",
        "build_blue.deid_encounters",
        "build_blue.deid_patients",
        "quarantine.rejected_records",
        "audit.file_ledger",
    ],
)
def test_analyst_is_refused_outside_the_published_schema(test_warehouse, first_run, relation):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        query(test_warehouse, "analyst", f"select 1 from {relation} limit 1")


def test_steward_cannot_read_the_crosswalk(test_warehouse, first_run):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        query(test_warehouse, "steward", "select 1 from crosswalk.patient_crosswalk limit 1")


def test_published_fact_holds_no_patient_identifier_and_no_full_date(test_warehouse, first_run):
    columns = query(
        test_warehouse,
        "analyst",
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'analytics' and table_name = 'fct_encounters'",
    )
    assert "patient_id" not in {name for name, _ in columns}
    # under Safe Harbor (the default policy) a date column exists only to be empty
    for name, kind in columns:
        if kind in ("date", "timestamp without time zone", "timestamp with time zone"):
            filled = query(
                test_warehouse,
                "analyst",
                f"select count({name}) from analytics.fct_encounters",
            )
            assert filled == [(0,)], name
    raw_patient_ids = {
        row[0]
        for row in query(test_warehouse, "steward", "select patient_id from raw_ehr.encounters")
    }
    published = query(test_warehouse, "analyst", "select * from analytics.fct_encounters")
    values = {str(value) for row in published for value in row}
    assert raw_patient_ids and not values & raw_patient_ids
    # no calendar year beside a patient's offsets (docs/deidentification.md, "Dates")
    offsets = query(
        test_warehouse, "analyst", "select count(visit_day_offset) from analytics.fct_encounters"
    )
    assert offsets[0][0] == len(published)
    assert "visit_year" not in {
        column
        for (column,) in query(
            test_warehouse,
            "analyst",
            "select column_name from information_schema.columns"
            " where table_schema = 'analytics' and table_name = 'fct_encounters'",
        )
    }


def test_second_run_with_the_same_files_loads_nothing_twice(test_warehouse, first_run):
    archived = sorted((test_warehouse.var_dir / "archive" / "ehr").glob("ehr_*.csv"))
    # The same content dropped again under another name is recognised by its hash.
    shutil.copy(archived[0], test_warehouse.landing_dir / "ehr" / "ehr_2024-03-15_resent.csv")
    second = run_pipeline(test_warehouse, "run_2")
    assert (second["received"], second["loaded"]) == (0, 0)
    published = query(test_warehouse, "analyst", "select count(*) from analytics.fct_encounters")
    assert published[0][0] == first_run["loaded"]
    assert second["build_schema"] != first_run["build_schema"]


@pytest.mark.parametrize(
    "statement",
    [
        *(
            f"create table {schema}.mine (x int)"
            for schema in (
                "analytics",
                "public",
                "raw_ehr",
                "staging",
                "intermediate",
                "crosswalk",
                "reference",
                "build_blue",
                "build_green",
                "quarantine",
                "audit",
            )
        ),
        "create temporary table mine (x int)",
        "create schema mine",
    ],
)
def test_analyst_cannot_create_anything(test_warehouse, first_run, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        query(test_warehouse, "analyst", statement)
