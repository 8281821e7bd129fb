"""The build plan against real dbt runs: a build schema rebuilds only what changed since its own
last complete build, and a reading whose patient is not registered yet waits, then is published.

Every test starts after `first_build` with the schema built up to date with what landed, and
leaves it so: the tests run alone or in any order."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from demo.ehr_extracts import write_extracts, write_patient_extract
from demo.patients import person
from demo.vitals_files import write_vitals
from orchestration import pipeline
from warehouse.bootstrap import bootstrap
from warehouse.build_plan import BuildPlan, plan_build, record_built
from warehouse.connection import dbt_environment

pytestmark = pytest.mark.e2e

SCHEMA = "build_blue"
# Everything a device reading flows through, and nothing else.
VITALS_MODELS = {
    "stg_vitals__readings",
    "device_crosswalk",
    "deid_vital_readings",
    "fct_vital_signs",
    "fct_vital_signs_hourly",
    "dim_facility",
}
# A model that reckons ages on the build's day (a patient with no event yet), and one built on it.
AS_OF_MODELS = {"deid_patients", "dim_patient"}
UNREGISTERED = person(777)  # the demo registry holds patients 0 .. 499
FIRST_READINGS = datetime(2024, 3, 15, 14, 0, tzinfo=UTC)  # demo.vitals_files' default start


def hours_later(hours: int) -> datetime:
    """The start of a test's own readings: after the first build's, apart from every other
    test's (readings of one device at one moment are one reading, landed once)."""
    return FIRST_READINGS + timedelta(hours=hours)


def plan(tw, run_id: str, **options) -> BuildPlan:
    # as the warehouse build does: staging reads only what the landed checkpoint validated
    pipeline.validate_landed_batches(run_id)
    env = {
        **os.environ,
        **dbt_environment(tw.warehouse),
        "DBT_BUILD_SCHEMA": SCHEMA,
        "PIPELINE_RUN_ID": run_id,
        "DBT_TARGET_PATH": str(tw.var_dir / "dbt_plan"),
    }
    return plan_build(tw.warehouse, SCHEMA, run_id, env, **options)


def build(tw, planned: BuildPlan) -> None:
    """As the warehouse build does: dbt builds the plan (no dbt when it selects nothing), then the
    build is recorded."""
    if not planned.builds_nothing:
        result = tw.dbt("build", *planned.select_args(), build_schema=SCHEMA, run_id=planned.run_id)
        assert result.returncode == 0, result.stdout[-3000:]
    record_built(tw.warehouse, SCHEMA, planned.run_id)


def models(planned: BuildPlan) -> set[str]:
    """The models of a plan (it lists their tests too)."""
    return {uid.split(".")[2] for uid in planned.unique_ids if uid.startswith("model.")}


def count(tw, relation: str) -> int:
    with psycopg.connect(**tw.warehouse.connect_kwargs("transformer")) as conn:
        return conn.execute(f"select count(*) from {relation}").fetchone()[0]


def land_readings(
    tw, run_id: str, patient_id: str, at: datetime, device_id: str, ward: str = "ICU"
) -> None:
    """Three readings a minute apart of one patient from one device, landed."""
    lines = [
        {
            "device_id": device_id,
            "patient_id": patient_id,
            "timestamp": (at + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "measurements": {
                "heart_rate": 80,
                "blood_pressure": {"systolic": 120, "diastolic": 80},
                "temperature": 98.6,
                "oxygen_saturation": 97,
                "respiratory_rate": 16,
            },
            "device_status": "OK",
            "location": {"hospital": "General Hospital", "ward": ward, "room": "101"},
        }
        for minute in range(3)
    ]
    folder = tw.landing_dir / "vitals"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"vitals_{at:%Y%m%dT%H%M%S}_0001.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert pipeline.land_files("vitals", run_id, settle_seconds=0)["loaded"] == 3


def land_readings_of_an_unregistered_patient(tw, run_id: str) -> None:
    land_readings(
        tw, run_id, UNREGISTERED.patient_id, datetime(2024, 3, 20, 8, 0, tzinfo=UTC), "DEV_0900"
    )


@pytest.fixture(scope="module")
def first_build(test_warehouse):
    write_patient_extract(test_warehouse.landing_dir / "ehr_patients")
    pipeline.land_files("ehr_patients", "plan_1", settle_seconds=0)
    write_extracts(test_warehouse.landing_dir / "ehr", files=1, rows=100, defects_per_file=0)
    pipeline.land_files("ehr", "plan_1", settle_seconds=0)
    write_vitals(test_warehouse.landing_dir / "vitals", files=2, readings=50)
    pipeline.land_files("vitals", "plan_1", settle_seconds=0)
    planned = plan(test_warehouse, "plan_1")
    build(test_warehouse, planned)
    return planned


def test_a_schema_without_a_complete_build_builds_everything(first_build):
    assert first_build.builds_everything
    assert first_build.select_args() == []
    assert "no complete build" in first_build.reason


def test_nothing_new_builds_nothing(test_warehouse, first_build):
    planned = plan(test_warehouse, "plan_2")
    assert planned.builds_nothing, planned.nodes
    record_built(test_warehouse.warehouse, SCHEMA, "plan_2")


def test_new_readings_rebuild_the_vitals_models_and_nothing_else(test_warehouse, first_build):
    before = count(test_warehouse, f"{SCHEMA}.fct_vital_signs")
    write_vitals(test_warehouse.landing_dir / "vitals", files=1, readings=40, start=hours_later(2))
    pipeline.land_files("vitals", "plan_3", settle_seconds=0)
    planned = plan(test_warehouse, "plan_3")
    assert models(planned) == VITALS_MODELS
    assert "assert_hourly_vitals_count_every_reading" in planned.nodes  # a test of theirs
    build(test_warehouse, planned)
    assert count(test_warehouse, f"{SCHEMA}.fct_vital_signs") > before


def test_a_build_not_recorded_is_planned_again(test_warehouse, first_build):
    write_vitals(test_warehouse.landing_dir / "vitals", files=1, readings=40, start=hours_later(3))
    pipeline.land_files("vitals", "plan_4", settle_seconds=0)
    failed = plan(test_warehouse, "plan_4")
    # the build of plan_4 failed: nothing is recorded, and the next plan takes it in again
    retried = plan(test_warehouse, "plan_5")
    assert models(failed) == models(retried) == VITALS_MODELS
    build(test_warehouse, retried)
    assert plan(test_warehouse, "plan_6").builds_nothing


def test_a_new_day_rebuilds_the_models_that_reckon_ages_on_it(test_warehouse, first_build):
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        conn.execute(
            "update audit.build_states set built_on = built_on - 1 where build_schema = %s",
            (SCHEMA,),
        )
    planned = plan(test_warehouse, "plan_7")
    assert AS_OF_MODELS <= models(planned)
    # ages at a visit are reckoned on the patient's own dates: the encounters are not rebuilt
    assert not {"deid_encounters", "stg_ehr__encounters", *VITALS_MODELS} & models(planned)
    build(test_warehouse, planned)
    assert plan(test_warehouse, "plan_8").builds_nothing


def test_other_build_arguments_build_everything(test_warehouse, first_build):
    planned = plan(test_warehouse, "plan_9", dbt_args=["--vars", "{min_cell_size: 20}"])
    assert planned.builds_everything
    assert "arguments changed" in planned.reason


def test_a_schema_without_an_allow_list_of_published_relations_builds_everything(
    test_warehouse, first_build
):
    """A schema built before migration 0006 has none, and publishing needs it: built whole."""
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        kept = conn.execute(
            "delete from audit.published_columns where build_schema = %s returning *", (SCHEMA,)
        ).fetchall()
    try:
        assert kept
        planned = plan(test_warehouse, "plan_10")
    finally:
        with (
            psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn,
            conn.cursor() as cursor,
        ):
            cursor.executemany(
                "insert into audit.published_columns values (%s, %s, %s, %s, %s, %s, %s, %s)",
                kept,
            )
    assert planned.builds_everything
    assert "no allow-list of published relations" in planned.reason


def _columns(tw, table: str) -> set[str]:
    with psycopg.connect(**tw.warehouse.connect_kwargs("transformer")) as conn:
        rows = conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = %s",
            (SCHEMA, table),
        ).fetchall()
    return {column for (column,) in rows}


def _tables(tw) -> set[str]:
    with psycopg.connect(**tw.warehouse.connect_kwargs("transformer")) as conn:
        rows = conn.execute(
            "select table_name from information_schema.tables where table_schema = %s", (SCHEMA,)
        ).fetchall()
    return {table for (table,) in rows}


def _reading_keys(tw) -> set[str]:
    with psycopg.connect(**tw.warehouse.connect_kwargs("transformer")) as conn:
        rows = conn.execute(f"select reading_key from {SCHEMA}.deid_vital_readings").fetchall()
    return {key for (key,) in rows}


def test_a_table_of_an_earlier_version_is_replaced_by_the_version_built_whole(
    test_warehouse, first_build
):
    """A table built before its model had versions (version 1 had a year beside each offset; the
    table's comment names no version) is dropped when its model is built, and the version built
    whole: an incremental model would otherwise merge into the old layout
    (docs/published_versions.md). A table that says its version is kept, and with it its random
    keys."""
    tw = test_warehouse
    encounters = count(tw, f"{SCHEMA}.fct_encounters")
    keys = _reading_keys(tw)
    with psycopg.connect(**tw.warehouse.connect_kwargs("transformer")) as conn:
        conn.execute(f"alter table {SCHEMA}.fct_encounters add column visit_year integer")
        conn.execute(f"comment on table {SCHEMA}.fct_encounters is null")
        # a version the project no longer has (withdrawn after its deprecation window)
        conn.execute(f"create table {SCHEMA}.fct_encounters_v1 as select 1 as visit_year")
    built = tw.dbt(
        "build", "--select", "fct_encounters", "deid_vital_readings",
        "--indirect-selection=cautious", build_schema=SCHEMA, run_id="plan_11",
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:]
    assert "holds another version of fct_encounters than 2" in built.stdout
    assert "visit_year" not in _columns(tw, "fct_encounters")  # built whole
    assert count(tw, f"{SCHEMA}.fct_encounters") == encounters  # every encounter again
    assert '."fct_encounters_v1" is a version of fct_encounters the project no longer has' in (
        built.stdout
    )
    assert "fct_encounters_v1" not in _tables(tw)
    assert "holds another version of deid_vital_readings" not in built.stdout
    assert _reading_keys(tw) == keys  # its table said its version: kept, keys and all


def test_a_reading_waits_for_its_patient_then_is_published(test_warehouse, first_build):
    land_readings_of_an_unregistered_patient(test_warehouse, "plan_10")
    published = count(test_warehouse, f"{SCHEMA}.fct_vital_signs")
    planned = plan(test_warehouse, "plan_10")
    build(test_warehouse, planned)
    waiting = test_warehouse.dbt(
        "test", "--select", "vital_readings_waiting_for_their_patient",
        build_schema=SCHEMA, run_id="plan_10",
    )  # fmt: skip
    assert "Got 3 results, configured to warn" in waiting.stdout
    assert count(test_warehouse, f"{SCHEMA}.fct_vital_signs") == published

    # the registry names the patient: their anchor is set, and the readings that waited publish
    write_patient_extract(
        test_warehouse.landing_dir / "ehr_patients", patients=1, day=date(2024, 3, 21), first=777
    )
    assert pipeline.land_files("ehr_patients", "plan_11", settle_seconds=0)["loaded"] == 1
    planned = plan(test_warehouse, "plan_11")
    assert {"int_patients_keyed", "deid_vital_readings", "fct_vital_signs"} <= models(planned)
    build(test_warehouse, planned)
    assert count(test_warehouse, f"{SCHEMA}.fct_vital_signs") == published + 3
    waiting = test_warehouse.dbt(
        "test", "--select", "vital_readings_waiting_for_their_patient",
        build_schema=SCHEMA, run_id="plan_11",
    )  # fmt: skip
    assert waiting.returncode == 0 and " WARN=0 ERROR=0 " in waiting.stdout, waiting.stdout


TEST_WARD = "Ward 7 (a test's)"
VOCABULARIES = "reference.published_vocabularies"


def _with_test_ward(tw) -> int:
    """Rows of the vitals tables that publish the test's ward."""
    with psycopg.connect(**tw.warehouse.connect_kwargs("transformer")) as conn:
        return sum(
            conn.execute(
                f"select count(*) from {SCHEMA}.{table} where ward_name = %s", (TEST_WARD,)
            ).fetchone()[0]
            for table in ("deid_vital_readings", "fct_vital_signs")
        )


def _withheld_against(tw) -> set[tuple]:
    with psycopg.connect(**tw.warehouse.connect_kwargs(tw.warehouse.admin_user)) as conn:
        return set(
            conn.execute(
                "select relation, vocabularies_loaded, withheld_at from audit.withheld_vocabularies"
                " where relation in (%s, %s)",
                (f"{SCHEMA}.deid_vital_readings", f"{SCHEMA}.fct_vital_signs"),
            ).fetchall()
        )


def _set_vocabularies(tw, statement: str, comment: str) -> None:
    """Seed published_vocabularies changed as a load of another file would change it: its
    rows, and its table's comment (the loaded file's checksum: macros/seed_when_changed.sql)."""
    with psycopg.connect(**tw.warehouse.connect_kwargs(tw.warehouse.admin_user)) as conn:
        conn.execute(statement, (TEST_WARD,))
        conn.execute(f"comment on table {VOCABULARIES} is '{comment}'")


def test_a_value_withdrawn_from_the_published_vocabularies_is_withheld_from_earlier_rows(
    test_warehouse, first_build
):
    """A ward listed when its readings were published, then withdrawn (a steward finds that it
    names someone): the next build of the incremental vitals tables nulls it in the rows written
    before (macros/free_text.sql, withhold_unlisted). While the list stays as it is, a build scans
    no earlier row for it: the tables' record of the list they withheld against is not rewritten."""
    tw = test_warehouse
    with psycopg.connect(**tw.warehouse.connect_kwargs(tw.warehouse.admin_user)) as conn:
        loaded = conn.execute(
            f"select obj_description('{VOCABULARIES}'::regclass, 'pg_class')"
        ).fetchone()[0]
    assert loaded.startswith("seed checksum ")
    _set_vocabularies(
        tw,
        f"insert into {VOCABULARIES} (vocabulary, value, source) values ('ward', %s, 'a test')",
        f"{loaded} and a test ward",
    )
    try:
        at = datetime(2024, 3, 22, 9, 0, tzinfo=UTC)
        land_readings(tw, "plan_20", person(1).patient_id, at, "DEV_0901", ward=TEST_WARD)
        build(tw, plan(tw, "plan_20"))
        assert _with_test_ward(tw) == 6  # 3 readings, in each table
        assert {loaded for _, loaded, _ in _withheld_against(tw)} == {f"{loaded} and a test ward"}
    finally:
        _set_vocabularies(
            tw, f"delete from {VOCABULARIES} where vocabulary = 'ward' and value = %s", loaded
        )

    def build_vitals_tables(run_id: str) -> None:
        built = tw.dbt(
            "build", "--select", "deid_vital_readings", "fct_vital_signs",
            "--indirect-selection=cautious", build_schema=SCHEMA, run_id=run_id,
        )  # fmt: skip
        assert built.returncode == 0, built.stdout[-3000:]

    build_vitals_tables("plan_21")
    assert _with_test_ward(tw) == 0
    withheld = _withheld_against(tw)
    assert {loaded for _, loaded, _ in withheld} == {loaded}

    build_vitals_tables("plan_22")  # the list as it was: nothing to withhold, no scan
    assert _withheld_against(tw) == withheld


def _has_column(tw, table: str, column: str) -> bool:
    with psycopg.connect(**tw.warehouse.connect_kwargs("transformer")) as conn:
        return (
            conn.execute(
                "select 1 from information_schema.columns"
                " where table_schema = %s and table_name = %s and column_name = %s",
                (SCHEMA, table, column),
            ).fetchone()
            is not None
        )


def test_a_vitals_table_built_before_its_watermark_column_is_upgraded_by_dbt_not_at_start(
    test_warehouse, first_build
):
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        conn.execute(f"alter table {SCHEMA}.fct_vital_signs drop column _built_at")
    bootstrap(test_warehouse.warehouse)  # what every start of the warehouse runs
    # dbt's tables are changed by dbt only: a start leaves the old table as it is
    assert not _has_column(test_warehouse, "fct_vital_signs", "_built_at")
    before = count(test_warehouse, f"{SCHEMA}.fct_vital_signs")
    # the planned upgrade (docs/runbook.md): a full refresh of the model, by dbt
    refreshed = test_warehouse.dbt(
        "build", "--full-refresh", "--select", "fct_vital_signs",
        build_schema=SCHEMA, run_id="plan_12",
    )  # fmt: skip
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert _has_column(test_warehouse, "fct_vital_signs", "_built_at")
    assert count(test_warehouse, f"{SCHEMA}.fct_vital_signs") == before  # every reading kept
    write_vitals(test_warehouse.landing_dir / "vitals", files=1, readings=40, start=hours_later(1))
    pipeline.land_files("vitals", "plan_12b", settle_seconds=0)
    planned = plan(test_warehouse, "plan_12b")
    assert models(planned) == VITALS_MODELS
    build(test_warehouse, planned)
    assert count(test_warehouse, f"{SCHEMA}.fct_vital_signs") > before
    # every reading has its watermark, so the next incremental build merges only what is new
    assert count(test_warehouse, f"{SCHEMA}.fct_vital_signs where _built_at is null") == 0


def _record_publication(tw, build_schema: str, run_id: str) -> None:
    """What publish records, as the publisher (the views it makes do not matter to the plan)."""
    with psycopg.connect(**tw.warehouse.connect_kwargs("publisher")) as conn:
        conn.execute(
            "insert into audit.publications (run_id, build_schema, relations) values (%s, %s, %s)",
            (run_id, build_schema, []),
        )


def test_a_run_with_nothing_new_since_the_published_build_builds_nothing_there(
    test_warehouse, first_build
):
    # SCHEMA holds everything that landed, and is published
    build(test_warehouse, plan(test_warehouse, "plan_20"))
    _record_publication(test_warehouse, SCHEMA, "plan_20")
    current = pipeline.plan_next_build("plan_21")
    assert current["build_schema"] == SCHEMA and current["nodes"] == []
    assert "nothing changed since the published build" in current["reason"]
    # once something lands, the schema analysts do not read, never built, builds everything
    write_vitals(test_warehouse.landing_dir / "vitals", files=1, readings=20, start=hours_later(4))
    pipeline.land_files("vitals", "plan_22", settle_seconds=0)
    pipeline.validate_landed_batches("plan_22")
    stale = pipeline.plan_next_build("plan_22")
    assert stale["build_schema"] == "build_green" and stale["nodes"] is None
    assert "build_green has no complete build" in stale["reason"]
    # every test here starts with SCHEMA built up to date: the readings are built before the next
    build(test_warehouse, plan(test_warehouse, "plan_23"))
