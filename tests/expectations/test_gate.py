"""The quality gate on a throwaway PostgreSQL, with real dbt builds and Great Expectations runs.

Run 1 lands good EHR extracts and publishes. Run 2 lands an extract in which 3 of 20 visits are
dated 1850: the landed checkpoint moves them to quarantine, the blocking validity check fails
(85% valid, threshold 90%), and the run does not publish. Run 3 lands an extract whose
descriptions are mostly missing: a warning, published. The tests read what each run left.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest

from demo.claims_files import write_claims
from demo.ehr_extracts import write_extracts
from orchestration import pipeline
from warehouse.publish import PublishRefused

pytestmark = pytest.mark.e2e

PUBLISHED_FACT = (
    "select count(*), md5(string_agg(fct::text, ',' order by encounter_key))"
    " from analytics.fct_encounters as fct"
)


@dataclass
class GateRun:
    run_id: str
    build_schema: str
    error: str | None  # the GateFailed message, when the gate failed


def query(tw, role: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(**tw.warehouse.connect_kwargs(role)) as conn:
        return conn.execute(statement, params).fetchall()


def run_pipeline(tw, run_id: str) -> GateRun:
    """The DAG's steps in order, without Airflow: land, validate, build, gate, publish."""
    pipeline.land_files("ehr", run_id, settle_seconds=0)
    pipeline.validate_landed_batches(run_id)
    build_schema = pipeline.choose_build_schema()
    result = tw.dbt("build", build_schema=build_schema, run_id=run_id)
    assert result.returncode == 0, result.stdout[-3000:]
    try:
        pipeline.quality_gate(build_schema, run_id)
    except pipeline.GateFailed as failed:
        return GateRun(run_id, build_schema, str(failed))
    pipeline.publish(build_schema, run_id)
    return GateRun(run_id, build_schema, None)


def rewrite(path: Path, change) -> None:
    """Apply `change(position, row)` to each record of a CSV extract (positions from 1)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for position, row in enumerate(rows, start=1):
        change(position, row)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


IMPLAUSIBLE_POSITIONS = (2, 9, 17)


@pytest.fixture(scope="module")
def runs(test_warehouse) -> dict[str, object]:
    tw = test_warehouse
    landing = tw.landing_dir / "ehr"
    write_extracts(landing, files=2, rows=60, defects_per_file=0)
    good = run_pipeline(tw, "run_good")
    assert good.error is None
    before_blocking = query(tw, "analyst", PUBLISHED_FACT)

    [bad] = write_extracts(landing, files=1, rows=20, defects_per_file=0, seed=99,
                           first_day=date(2024, 5, 1))  # fmt: skip

    def date_1850(position: int, row: dict) -> None:
        if position in IMPLAUSIBLE_POSITIONS:
            row["visit_date"] = "1850-06-01"

    rewrite(bad, date_1850)
    blocked = run_pipeline(tw, "run_blocked")
    after_blocking = query(tw, "analyst", PUBLISHED_FACT)

    [sparse] = write_extracts(landing, files=1, rows=20, defects_per_file=0, seed=5,
                              first_day=date(2024, 6, 1))  # fmt: skip
    rewrite(
        sparse, lambda position, row: row.update(diagnosis_description="") if position % 2 else None
    )
    warned = run_pipeline(tw, "run_warned")
    return {
        "good": good,
        "blocked": blocked,
        "warned": warned,
        "bad_file": bad.name,
        "before_blocking": before_blocking,
        "after_blocking": after_blocking,
        "after_warning": query(tw, "analyst", PUBLISHED_FACT),
    }


def test_a_blocking_breach_fails_the_run_and_names_expectation_table_count_and_positions(runs):
    message = runs["blocked"].error
    assert message is not None
    assert "analysts keep the previously published build" in message
    assert "expect_column_values_to_be_between(visit_date__date)" in message
    assert "[visit_date_is_plausible] on raw_ehr.encounters" in message
    assert "3 of 20 rows fail" in message
    for position in IMPLAUSIBLE_POSITIONS:
        assert f"{runs['bad_file']}#{position}" in message


def test_a_blocking_breach_leaves_what_analysts_see_unchanged(test_warehouse, runs):
    assert runs["after_blocking"] == runs["before_blocking"]
    published = query(
        test_warehouse, "transformer", "select run_id from audit.publications order by published_at"
    )
    assert ("run_blocked",) not in published
    with pytest.raises(PublishRefused):
        pipeline.publish(runs["blocked"].build_schema, "run_blocked")


def test_the_failing_records_wait_in_quarantine_with_their_reason(test_warehouse, runs):
    held = query(
        test_warehouse,
        "steward",
        "select file_name, record_position, rule, reason, run_id, record->>'visit_date'"
        " from quarantine.rejected_records where stage = 'after_landing' and source = 'ehr'"
        " order by record_position",
    )
    assert [(name, position) for name, position, *_ in held] == [
        (runs["bad_file"], position) for position in IMPLAUSIBLE_POSITIONS
    ]
    for _, _, rule, reason, run_id, visit_date in held:
        assert rule == "visit_date_is_plausible"
        assert reason.startswith(
            "visit_date_is_plausible: visit_date (as date) outside [1900-01-01"
        )
        assert "1850" not in reason
        assert (run_id, visit_date) == ("run_blocked", "1850-06-01")
    # moved, not copied: the raw table no longer holds them, the ledger counts them as quarantined
    ledger = query(
        test_warehouse,
        "steward",
        "select rows_received, rows_loaded, rows_quarantined from audit.file_ledger"
        " where file_name = %s",
        (runs["bad_file"],),
    )
    assert ledger == [(20, 17, 3)]
    raw = query(
        test_warehouse,
        "steward",
        "select count(*) from raw_ehr.encounters where visit_date < '1900'",
    )
    assert raw == [(0,)]


def test_a_warning_only_breach_publishes_and_records_the_warning(test_warehouse, runs):
    assert runs["warned"].error is None
    assert runs["after_warning"] != runs["after_blocking"]
    # the records the blocked run held back stay out; its other 17 visits publish now
    published = query(test_warehouse, "analyst", "select count(*) from analytics.fct_encounters")
    assert published == [(60 * 2 + 17 + 20,)]
    gate = query(
        test_warehouse,
        "steward",
        "select passed, expectations_failed, warnings from audit.gate_results"
        " where run_id = 'run_warned' and checkpoint = 'landed'",
    )
    # the sources that never landed are stale (freshness warnings), and descriptions are missing
    assert gate == [(True, 0, 6)]
    [(details,)] = query(
        test_warehouse,
        "steward",
        "select details from audit.gate_results"
        " where run_id = 'run_warned' and checkpoint = 'landed'",
    )
    assert sorted((d["table"], d["rule"], d["severity"], d["failing_rows"]) for d in details) == [
        ("landings", f"{source}_landed_within_hours", "warning", None)
        for source in ("claims", "ehr_patients", "fhir", "research", "vitals")
    ] + [("raw_ehr.encounters", "diagnosis_description_not_null", "warning", 10)]
    publications = query(test_warehouse, "steward", "select run_id from audit.publications")
    assert ("run_warned",) in publications


def test_scores_are_stored_for_every_run_source_and_dimension(test_warehouse, runs):
    scores = query(
        test_warehouse,
        "steward",
        "select run_id, table_name, dimension, score, passed from audit.quality_scores"
        " where table_name = 'raw_ehr.encounters' order by run_id, dimension",
    )
    assert ("run_blocked", "raw_ehr.encounters", "validity", 0.85, False) in scores
    assert ("run_warned", "raw_ehr.encounters", "completeness", 0.5, False) in scores
    assert ("run_good", "raw_ehr.encounters", "validity", 1.0, True) in scores
    marts = query(
        test_warehouse,
        "steward",
        "select distinct table_name from audit.quality_scores where checkpoint = 'publish_gate'",
    )
    assert {"fct_encounters", "dim_patient"} <= {name for (name,) in marts}
    freshness = query(
        test_warehouse,
        "steward",
        "select score, observed from audit.quality_scores"
        " where dimension = 'freshness' and source = 'ehr' and run_id = 'run_good'",
    )
    assert freshness[0][0] == 1.0 and 0 <= freshness[0][1] < 1


def test_a_held_claim_takes_its_lines_and_a_repeat_is_held_after_the_valid_copy(
    test_warehouse, runs
):
    # after the three runs: claims landed before them would change their freshness warnings
    tw = test_warehouse
    first, second = write_claims(tw.landing_dir / "claims", files=2, claims=10, defects_per_file=0)
    claims_1, claims_2 = (json.loads(path.read_text()) for path in (first, second))
    claims_1[4]["service_date"] = "1850-01-01"  # record 5: implausible, with its service lines
    claims_2[2] = {**claims_1[0], "service_date": "1850-01-02"}  # record 3: an invalid repeat
    claims_2[6] = dict(claims_1[1])  # record 7: a valid repeat of record 2 of the first file
    first.write_text(json.dumps(claims_1))
    second.write_text(json.dumps(claims_2))
    pipeline.land_files("claims", "run_claims", settle_seconds=0)
    pipeline.validate_landed_batches("run_claims")

    held = query(
        tw,
        "steward",
        "select file_name, record_position, rule, jsonb_array_length(record->'services')"
        " from quarantine.rejected_records where run_id = 'run_claims' order by 1, 2",
    )
    assert held == [
        (first.name, 5, "service_date_is_plausible", len(claims_1[4]["services"])),
        (second.name, 3, "service_date_is_plausible", len(claims_1[0]["services"])),
        (second.name, 7, "claim_sent_once_per_batch", len(claims_1[1]["services"])),
    ]
    lines_left = query(
        tw,
        "steward",
        "select count(*) from raw_claims.claim_service_lines as line"
        " join audit.file_ledger as ledger on ledger.file_key = line._file_key"
        " where (ledger.file_name, line._record_position) in ((%s, 5), (%s, 3), (%s, 7))",
        (first.name, second.name, second.name),
    )
    assert lines_left == [(0,)]
    ledger = query(
        tw,
        "steward",
        "select rows_received, rows_loaded, rows_quarantined from audit.file_ledger"
        " where run_id = 'run_claims' order by file_name",
    )
    assert ledger == [(10, 9, 1), (10, 8, 2)]
    raw = query(tw, "steward", "select count(*) from raw_claims.claims")
    assert raw == [(9 + 8,)]


def test_analysts_see_only_the_allow_listed_relations_and_columns(test_warehouse, runs):
    """Each published view holds its model's documented columns, never an internal one; a column
    added to a built table without being documented is not published."""
    warned = runs["warned"]
    recorded = query(
        test_warehouse,
        "transformer",
        "select relation, columns, published_as from audit.published_columns"
        " where build_schema = %s",
        (warned.build_schema,),
    )
    listed = {relation: columns for relation, columns, _ in recorded}
    named = {name: relation for relation, _, names in recorded for name in names}
    views = query(
        test_warehouse,
        "analyst",
        "select table_name, array_agg(column_name::text order by ordinal_position)"
        " from information_schema.columns where table_schema = 'analytics' group by 1",
    )
    assert len(listed) >= 26 and {"deid_patients", "fct_encounters"} <= set(listed)
    # a versioned relation's latest version by its name and by <name>_v<N>
    assert named["fct_encounters"] == named["fct_encounters_v2"] == "fct_encounters"
    assert dict(views) == {view: listed[named[view]] for view, _ in views}
    assert set(dict(views)) == set(named)
    assert not any(column.startswith("_") for _, columns in views for column in columns)
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        conn.execute(f"alter table {warned.build_schema}.fct_encounters add column note text")
    try:
        pipeline.publish(warned.build_schema, warned.run_id)  # its gate passed in that run
        published = query(
            test_warehouse,
            "analyst",
            "select column_name from information_schema.columns"
            " where table_schema = 'analytics' and table_name = 'fct_encounters'",
        )
        assert ("note",) not in published and len(published) == len(listed["fct_encounters"])
    finally:
        with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
            conn.execute(f"alter table {warned.build_schema}.fct_encounters drop column note")


def test_an_older_version_is_published_by_its_versioned_name_and_its_view_goes_with_it(
    test_warehouse, runs
):
    """A version kept for its deprecation window builds as <name>_v<N> and is published by that
    name only; when it is withdrawn (no longer on the allow-list), the next publication drops its
    view (docs/published_versions.md)."""
    warned = runs["warned"]
    older = f"{warned.build_schema}.fct_encounters_v1"
    columns = ["encounter_key", "patient_key", "visit_day_offset"]
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        conn.execute(
            f"create table {older} as select {', '.join(columns)}, 2024 as visit_year"
            f" from {warned.build_schema}.fct_encounters"
        )
        conn.execute(
            "insert into audit.published_columns (build_schema, relation, unique_id, published_as,"
            " columns, reads_sources, recorded_in) values (%s, 'fct_encounters_v1',"
            " 'model.healthcare_warehouse.fct_encounters.v1', array['fct_encounters_v1'], %s,"
            " true, %s)",
            (warned.build_schema, [*columns, "visit_year"], warned.run_id),
        )
    withdraw = (
        "delete from audit.published_columns"
        " where build_schema = %s and relation = 'fct_encounters_v1'"
    )
    versions = (
        "select table_name, count(*) from information_schema.columns"
        " where table_schema = 'analytics' and table_name like 'fct\\_encounters%%'"
        " group by 1 order by 1"
    )
    try:
        pipeline.publish(warned.build_schema, warned.run_id)
        kept = query(test_warehouse, "analyst", versions)
        # version 1 withdrawn: off the allow-list, and its table gone from the next build schema
        # (that build drops it: test_build_plan); here renamed, so that its view still reads it
        with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
            conn.execute(withdraw, (warned.build_schema,))
            conn.execute(f"alter table {older} rename to withdrawn_encounters")
        older = f"{warned.build_schema}.withdrawn_encounters"
        pipeline.publish(warned.build_schema, warned.run_id)
        after = query(test_warehouse, "analyst", versions)
    finally:
        with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
            conn.execute(withdraw, (warned.build_schema,))
            conn.execute(f"drop table {older} cascade")
    assert [name for name, _ in kept] == [
        "fct_encounters",
        "fct_encounters_v1",
        "fct_encounters_v2",
    ]
    assert dict(kept)["fct_encounters_v1"] == len(columns) + 1  # its own columns
    assert [name for name, _ in after] == ["fct_encounters", "fct_encounters_v2"]


def test_the_gate_blocks_a_relation_outside_the_allow_list(test_warehouse, runs):
    from expectations.gate import run_gate

    warned = runs["warned"]
    planted = f"{warned.build_schema}.deid_planted"
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        conn.execute(
            f"create table {planted} as select patient_key from {warned.build_schema}.deid_patients"
        )
    try:
        verdict = run_gate(test_warehouse.warehouse, warned.build_schema, "run_planted")
        with pytest.raises(PublishRefused, match="deid_planted"):
            pipeline.publish(warned.build_schema, warned.run_id)
    finally:
        with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
            conn.execute(f"drop table {planted}")
    assert not verdict.passed
    assert [(f.table, f.rule) for f in verdict.blocking] == [(planted, "published_allow_list")]
    assert query(
        test_warehouse,
        "analyst",
        "select count(*) from information_schema.tables where table_name = 'deid_planted'",
    ) == [(0,)]


def test_a_published_relation_replaced_by_a_view_is_refused(test_warehouse, runs):
    """A view runs with its owner's rights (the builder's, who reads raw PHI): what analysts
    select must be a table, whose rows the gate judged."""
    warned = runs["warned"]
    table = f"{warned.build_schema}.dim_date"
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        conn.execute(f"alter table {table} rename to moved_dim_date")
        conn.execute(f"create view {table} as select * from {warned.build_schema}.moved_dim_date")
    try:
        with pytest.raises(PublishRefused, match=r"not: dim_date \(a view\)"):
            pipeline.publish(warned.build_schema, warned.run_id)
    finally:
        with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
            conn.execute(f"drop view {table}")
            conn.execute(f"alter table {warned.build_schema}.moved_dim_date rename to dim_date")


def test_the_gate_blocks_a_raw_identifier_planted_in_a_published_column(test_warehouse, runs):
    """The gate's PHI scan reads what analysts would select of the relations the run rebuilt:
    an MRN written into a published column blocks, named by column and class, not by value."""
    from expectations.gate import run_gate

    warned = runs["warned"]
    table = f"{warned.build_schema}.deid_encounters"
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        (mrn,) = conn.execute("select patient_id from raw_ehr.encounters limit 1").fetchone()
        (kept,) = conn.execute(
            f"select diagnosis_description from {table} where encounter_key ="
            f" (select min(encounter_key::text)::uuid from {table})"
        ).fetchone()
        conn.execute(
            f"update {table} set diagnosis_description = %s where encounter_key ="
            f" (select min(encounter_key::text)::uuid from {table})",
            (f"follow-up for {mrn}",),
        )
    try:
        verdict = run_gate(test_warehouse.warehouse, warned.build_schema, warned.run_id)
    finally:
        with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
            conn.execute(
                f"update {table} set diagnosis_description = %s where encounter_key ="
                f" (select min(encounter_key::text)::uuid from {table})",
                (kept,),
            )
    assert not verdict.passed
    blocked = [(f.table, f.columns, f.rule) for f in verdict.blocking]
    assert blocked == [(table, ["diagnosis_description"], "phi_scan: medical_record_number")]
    assert mrn not in "\n".join(f.describe() for f in verdict.blocking)
    # the same build, as it was built: the scan finds nothing
    assert run_gate(test_warehouse.warehouse, warned.build_schema, warned.run_id).passed
