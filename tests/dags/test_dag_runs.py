"""`airflow dags test` of every DAG, on the demo data: each source's DAG and the warehouse build
(real task runs, from landed files to the published fact, handed on by Airflow assets), the
landing watch, the weekly report and maintenance (read from a local SMTP server and a restored
backup), and a failing task's emails.

Each scenario's DAGs run once, in a module fixture that keeps what the tests assert on, so every
test runs alone or in any order. The warehouse builds run in a fixed order through the fixtures'
dependencies (first build, a build of new readings only, a blocked build); a test that lands
more data (the landing watch) asks for the builds first, so that their plans see only their own.
Sequences of DAGs run in one Airflow process, as `make run` runs them (`run_dags`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from demo.claims_files import write_claims
from demo.ehr_extracts import write_extracts, write_patient_extract
from demo.vitals_files import write_vitals
from expectations import report
from orchestration import pipeline
from orchestration.dag_settings import NON_IDENTIFIERS
from tests.dags.airflow_cli import (
    asset_events,
    model_task,
    process_vitals,
    run_airflow,
    task_states,
)
from tests.dags.smtp_sink import body_of
from tests.warehouse.test_build_plan import VITALS_MODELS
from warehouse import backup
from warehouse.build_plan import record_built
from warehouse.phi_scan import (
    IdentifierIndex,
    known_non_identifiers,
    raw_identifiers,
    scan_files,
)

pytestmark = pytest.mark.e2e

SOURCE_DAGS = ("ehr_batch", "claims_batch", "vitals_feed", "fhir_api", "research_db")

PUBLISHED_FACT = (
    "select count(*), md5(string_agg(fct::text, ',' order by encounter_key))"
    " from analytics.fct_encounters as fct"
)


def _one(warehouse, role: str, statement: str, params: tuple = ()) -> tuple:
    with psycopg.connect(**warehouse.connect_kwargs(role)) as conn:
        return conn.execute(statement, params).fetchone()


@dataclass
class FirstBuild:
    outputs: dict[str, str]
    announced: set[str]
    left_in_landing: list[Path]
    published: int
    run_id: str
    result_states: list[str]
    gate_passed: bool
    pulls: dict[str, int]


@pytest.fixture(scope="module")
def first_build(test_warehouse, airflow_env, dag_runner) -> FirstBuild:
    """The demo data landed by each source's DAG, then the warehouse build: one process."""
    warehouse = test_warehouse.warehouse
    write_patient_extract(test_warehouse.landing_dir / "ehr_patients")
    write_extracts(test_warehouse.landing_dir / "ehr", files=2, rows=50, defects_per_file=2)
    write_claims(test_warehouse.landing_dir / "claims", files=1, claims=20)
    write_vitals(test_warehouse.landing_dir / "vitals", files=2, readings=30)
    process_vitals(airflow_env)  # the processor lands them; vitals_feed checks it, announces them
    before = asset_events(warehouse)
    _, outputs = dag_runner.run_dags(*SOURCE_DAGS, "warehouse_build")
    with psycopg.connect(**warehouse.connect_kwargs("steward")) as conn:
        run_id, states = conn.execute(
            """
            select runs.run_id, array_agg(distinct results.status)
            from audit.pipeline_runs as runs
            join audit.dbt_node_results as results on results.run_id = runs.run_id
            where runs.workflow = 'warehouse_build'
            group by runs.run_id
            """
        ).fetchone()
        gate = conn.execute(
            "select passed from audit.gate_results"
            " where run_id = %s and checkpoint = 'publish_gate'",
            (run_id,),
        ).fetchone()[0]
        pulls = dict(
            conn.execute("select source, sum(rows_loaded) from audit.api_pulls group by source")
        )
    return FirstBuild(
        outputs=outputs,
        announced=set(asset_events(warehouse)[len(before) :]),
        left_in_landing=list(test_warehouse.landing_dir.glob("*/*.*")),
        published=_one(warehouse, "analyst", "select count(*) from analytics.fct_encounters")[0],
        run_id=run_id,
        result_states=states,
        gate_passed=gate,
        pulls=pulls,
    )


def test_each_source_dag_lands_and_the_warehouse_build_publishes(first_build):
    # each landing announced its raw data: the assets the warehouse build is scheduled on
    assert first_build.announced == {
        "raw_ehr_patients", "raw_ehr", "raw_claims", "raw_vitals", "raw_fhir", "raw_research",
    }  # fmt: skip
    assert first_build.left_in_landing == []  # every file landed and archived
    assert first_build.published == 96
    assert first_build.run_id.startswith("warehouse_build__manual__")
    assert set(first_build.result_states) <= {"success", "pass"}
    assert first_build.gate_passed is True
    # 5 patients, 10 visits, 10 practitioners, 40 vital signs; the 2 demo hospitals and the
    # inpatient stay of one of the five (demo/inpatient_stays.py)
    assert first_build.pulls == {"fhir": 5 + 10 + 10 + 40 + 2 + 1, "research": 20}
    assert "quality_gate" in first_build.outputs["warehouse_build"]


def test_a_source_dag_with_nothing_new_is_skipped_and_starts_no_build(test_warehouse, dag_runner):
    before = asset_events(test_warehouse.warehouse)
    output = dag_runner.run_dag("claims_batch")
    assert "no new claims files" in output
    assert asset_events(test_warehouse.warehouse) == before


def _published_readings(test_warehouse) -> int:
    return _one(
        test_warehouse.warehouse, "analyst", "select count(*) from analytics.fct_vital_signs"
    )[0]


@dataclass
class VitalsOnlyBuild:
    catch_up_schema: str
    published_schema: str
    built_models: set[str]
    unplanned_results: int
    task_states: dict[str, tuple[str, int]]
    readings_before: int
    readings_after: int
    measured_sources: Path


@pytest.fixture(scope="module")
def vitals_only_build(test_warehouse, airflow_env, dag_runner, first_build) -> VitalsOnlyBuild:
    """After the first build, the other build schema catches up outside Airflow (so that both
    have a complete build); then only new readings land, and the warehouse build runs."""
    other = pipeline.choose_build_schema()
    planned = pipeline.plan_build(other, "catch_up")
    assert planned["nodes"] is None  # its first build: everything
    result = test_warehouse.dbt("build", build_schema=other, run_id="catch_up")
    assert result.returncode == 0, result.stdout[-3000:]
    record_built(test_warehouse.warehouse, other, "catch_up")
    before = _published_readings(test_warehouse)

    an_hour_later = datetime(2024, 3, 15, 15, 0, tzinfo=UTC)  # the first run's start, plus one
    write_vitals(test_warehouse.landing_dir / "vitals", files=1, readings=30, start=an_hour_later)
    process_vitals(airflow_env)
    dag_runner.run_dags("vitals_feed", "warehouse_build")

    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        run_id, build_schema = conn.execute(
            "select run_id, build_schema from audit.publications order by published_at desc limit 1"
        ).fetchone()
        built = {
            unique_id.split(".")[2]
            for (unique_id,) in conn.execute(
                "select distinct unique_id from audit.dbt_node_results"
                " where run_id = %s and resource_type = 'model'",
                (run_id,),
            ).fetchall()
        }
        unplanned_results = conn.execute(
            "select count(*) from audit.dbt_node_results"
            " where run_id = %s and unique_id like '%%.fct_encounters'",
            (run_id,),
        ).fetchone()[0]
    return VitalsOnlyBuild(
        catch_up_schema=other,
        published_schema=build_schema,
        built_models=built,
        unplanned_results=unplanned_results,
        task_states=task_states(test_warehouse.warehouse, "warehouse_build"),
        readings_before=before,
        readings_after=_published_readings(test_warehouse),
        measured_sources=test_warehouse.var_dir / "dbt_plan" / other / "sources.json",
    )


def test_a_run_with_only_new_readings_runs_only_the_vitals_models(vitals_only_build):
    run = vitals_only_build
    assert run.published_schema == run.catch_up_schema
    assert run.built_models == VITALS_MODELS
    # the producer built the plan's selection; a model it left out was skipped, with no result
    assert run.task_states["dbt.dbt_producer_watcher"][0] == "success"
    assert run.task_states[model_task("fct_vital_signs")][0] == "success"
    assert run.task_states[model_task("fct_encounters")][0] == "skipped"
    assert run.unplanned_results == 0
    assert run.readings_after > run.readings_before
    assert run.measured_sources.exists()


@dataclass
class BlockedBuild:
    extract_name: str
    exit_code: int
    output: str
    fact_before: tuple
    fact_after: tuple
    publications: int
    held: list[tuple]
    docs: Path
    report_page: str
    report: Path


@pytest.fixture(scope="module")
def blocked_build(test_warehouse, dag_runner, vitals_only_build) -> BlockedBuild:
    """An extract in which 3 of 20 visits are dated 1850 lands, and the warehouse build runs
    (after the first two: the last build of this module); the report is built after it."""
    warehouse = test_warehouse.warehouse
    before = _one(warehouse, "analyst", PUBLISHED_FACT)
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

    code, outputs = dag_runner.run_dags("ehr_batch", "warehouse_build", check=False)
    assert set(outputs) == {"migrate", "ehr_batch", "warehouse_build"}, outputs.keys()
    with psycopg.connect(**warehouse.connect_kwargs("steward")) as conn:
        run_id = conn.execute(
            "select run_id from audit.pipeline_runs where workflow = 'warehouse_build'"
            " order by started_at desc limit 1"
        ).fetchone()[0]
        published = conn.execute(
            "select count(*) from audit.publications where run_id = %s", (run_id,)
        ).fetchone()[0]
        held = conn.execute(
            "select record_position, rule from quarantine.quarantined_records"
            " where run_id = %s and stage = 'after_landing' order by 1",
            (run_id,),
        ).fetchall()
    report_page = report.build_report(warehouse)
    return BlockedBuild(
        extract_name=extract.name,
        exit_code=code,
        output=outputs["warehouse_build"],
        fact_before=before,
        fact_after=_one(warehouse, "analyst", PUBLISHED_FACT),
        publications=published,
        held=held,
        docs=report.build_data_docs(),
        report_page=report_page.read_text(),
        report=report_page,
    )


def test_a_blocked_run_in_airflow_fails_publishes_nothing_and_logs_no_identifier(
    test_warehouse, blocked_build, tmp_path
):
    run = blocked_build
    assert run.exit_code != 0, run.output[-3000:]
    assert "[visit_date_is_plausible] on raw_ehr.encounters: 3 of 20 rows fail" in run.output
    for record in (4, 11, 15):
        assert f"{run.extract_name}#{record}" in run.output
    assert run.fact_after == run.fact_before
    assert run.publications == 0
    assert run.held == [(record, "visit_date_is_plausible") for record in (4, 11, 15)]

    # Everyone reads the report: built after the failure, it and the task logs hold no
    # identifier value (the quarantined records' values included)
    assert "FAIL" in run.report_page
    # `airflow dags test` writes the task logs to its output (make run keeps it in
    # var/logs/airflow_<dag>.log): the failing gate's among them
    task_logs = tmp_path / "airflow_dags_test.log"
    task_logs.write_text(run.output)
    assert "quality_gate" in run.output and "GateFailed" in run.output
    index = IdentifierIndex(raw_identifiers(test_warehouse.warehouse))
    assert index.count > 500
    folders = [run.docs.parent, run.report.parent, task_logs]
    folders.append(test_warehouse.var_dir / "airflow" / "logs")
    # Cosmos logs its host and process id ("[vm|10722]"): a five-digit pid may equal a patient's
    # ZIP code by chance, as it did in CI on d0916b6, and is no identifier
    cosmos_processes = set(re.findall(r"\[[\w.-]+\|\d+\]", run.output))
    known = known_non_identifiers(test_warehouse.warehouse, [*NON_IDENTIFIERS, *cosmos_processes])
    assert scan_files(folders, index, known) == []


def _published_counts(warehouse, database: str | None = None) -> dict[str, int]:
    """Rows in every relation analysts read, in `database` (the warehouse's by default)."""
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user, database)) as conn:
        relations = [
            name
            for (name,) in conn.execute(
                "select table_name from information_schema.tables"
                " where table_schema = 'analytics' order by 1"
            )
        ]
        return {
            name: conn.execute(f"select count(*) from analytics.{name}").fetchone()[0]
            for name in relations
        }


@dataclass
class WeeklyReport:
    message: object  # email.message.Message
    builds: int
    passed: int
    claims_received: int


@pytest.fixture(scope="module")
def weekly_report(test_warehouse, dag_runner, smtp_sink, blocked_build) -> WeeklyReport:
    """The weekly report's DAG, after the module's three builds (the last one blocked)."""
    dag_runner.run_dag("weekly_report")
    message = smtp_sink.wait_for("Weekly report", timeout=10)
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        builds, passed = conn.execute(
            "select count(*), count(*) filter (where passed) from audit.gate_results"
            " where checkpoint = 'publish_gate'"
        ).fetchone()
        claims_received = conn.execute(
            "select sum(rows_received) from audit.file_ledger where source = 'claims'"
        ).fetchone()[0]
    return WeeklyReport(message, builds, passed, claims_received)


def test_the_weekly_report_emails_the_week_with_the_report_and_no_identifier(
    test_warehouse, weekly_report, tmp_path
):
    message = weekly_report.message
    body = body_of(message)
    builds, passed = weekly_report.builds, weekly_report.passed
    assert builds == 3 and passed == 2  # the blocked run failed
    assert f"Quality gate: {passed} of {builds} builds passed" in body
    [claims] = [line.split() for line in body.splitlines() if line.startswith("  claims ")]
    assert claims[:3] == ["claims", str(weekly_report.claims_received), "="]
    assert "visit_date_is_plausible" in body  # the blocked run's quarantined visits
    assert "30-day readmission rate (published build): " in body and "index stays" in body
    [attachment] = [part for part in message.walk() if part.get_filename()]
    assert attachment.get_filename() == "index.html"
    assert "Received = loaded + quarantined" in attachment.get_payload(decode=True).decode()

    mail = tmp_path / "weekly_report.txt"
    mail.write_text(message.as_string())
    index = IdentifierIndex(raw_identifiers(test_warehouse.warehouse))
    assert (
        scan_files([mail], index, known_non_identifiers(test_warehouse.warehouse, NON_IDENTIFIERS))
        == []
    )


@dataclass
class Maintenance:
    expired: Path
    kept: Path
    expired_elsewhere: list[Path]  # a quarantined file, an unfinished dlt package, a log
    kept_elsewhere: list[Path]
    older_backups: list[Path]
    backups_dir: Path
    published_when_backed_up: dict[str, int]


@pytest.fixture(scope="module")
def maintenance(test_warehouse, dag_runner, first_build) -> Maintenance:
    """Maintenance's DAG, with an archived extract 40 days old and two older backups waiting."""
    archived = sorted((test_warehouse.var_dir / "archive" / "ehr").iterdir())
    expired, kept = archived[0], archived[-1]
    forty_days_ago = datetime.now(UTC).timestamp() - 40 * 86400
    os.utime(expired, (forty_days_ago, forty_days_ago))
    # past their retention (airflow/orchestration.yml: quarantine 90, dlt_packages 7, logs 30)
    var = test_warehouse.var_dir
    a_year_ago = datetime.now(UTC).timestamp() - 365 * 86400
    package = var / "dlt" / "pipelines" / "ehr_files" / "load" / "loaded" / "1700000000.1"
    expired_elsewhere = [
        var / "quarantine" / "ehr" / "ehr_2023-01-01_001.csv",
        package / "completed_jobs" / "encounters.1.parquet",
        var / "logs" / "vitals_processor.2023-01-01.log",
    ]
    kept_elsewhere = [var / "quarantine" / "ehr" / "ehr_2024-12-01_001.csv", var / "logs" / "x.log"]
    for path in [*expired_elsewhere, *kept_elsewhere]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("held\n")
    for path in expired_elsewhere:
        os.utime(path, (a_year_ago, a_year_ago))
    expired_elsewhere[1] = package  # a package goes whole
    backups_dir = test_warehouse.var_dir / "backups"
    older = [backups_dir / "base" / f"2020010{day}T000000000000Z" for day in (1, 2)]
    for path in older:
        path.mkdir(parents=True)
        record = {"checked": {"start_segment": "000000010000000000000001"}, "encrypted_sha256": {}}
        (path / backup.RECORD).write_text(json.dumps(record))
    dag_runner.run_dag("maintenance")
    return Maintenance(
        expired,
        kept,
        expired_elsewhere,
        kept_elsewhere,
        older,
        backups_dir,
        _published_counts(test_warehouse.warehouse),
    )


def test_maintenance_deletes_expired_archives_and_keeps_the_newest_backups(maintenance):
    assert not maintenance.expired.exists() and maintenance.kept.exists()
    # and what else is kept for a while, each past its own retention
    assert not [path for path in maintenance.expired_elsewhere if path.exists()]
    assert all(path.exists() for path in maintenance.kept_elsewhere)
    backups = backup.backups(maintenance.backups_dir)
    assert len(backups) == 2 and backups[0] == maintenance.older_backups[1]  # backups_kept: 2
    assert oct(backups[-1].stat().st_mode & 0o777) == "0o700"
    assert all(oct(path.stat().st_mode & 0o777) == "0o600" for path in backups[-1].glob("*.age"))


def test_the_nightly_backup_holds_the_whole_server_checked_as_taken(maintenance):
    """Taken by the task, which holds no key; decrypted and checked here, with it. A restore
    from it is tested in tests/warehouse/test_point_in_time_restore.py."""
    newest = backup.backups(maintenance.backups_dir)[-1]
    checked = backup.verify(newest)
    assert checked.files == backup.record(newest)["checked"]["files"] > 900
    assert maintenance.published_when_backed_up["fct_encounters"] > 0


def test_the_landing_watch_starts_the_dag_of_a_source_with_a_new_file(
    test_warehouse, dag_runner, blocked_build
):
    # blocked_build: the module's builds are over, so that this landing is in none of their plans
    [new_file] = write_claims(
        test_warehouse.landing_dir / "claims", files=1, claims=5, defects_per_file=0,
        first_day=date(2024, 9, 1),
    )  # fmt: skip
    settled = datetime.now(UTC).timestamp() - 60
    os.utime(new_file, (settled, settled))
    before = asset_events(test_warehouse.warehouse)

    # the landing watch, then claims_batch as the scheduler runs it on that asset
    _, outputs = dag_runner.run_dags("landing_watch", "claims_batch")
    assert "no new ehr files" in outputs["landing_watch"]  # other sources' announcements skipped
    announced = asset_events(test_warehouse.warehouse)[len(before) :]
    assert announced == ["landing_claims", "raw_claims"]
    assert not new_file.exists()
    assert (test_warehouse.var_dir / "archive" / "claims" / new_file.name).exists()
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        assert conn.execute(
            "select rows_received from audit.file_ledger where file_name = %s", (new_file.name,)
        ).fetchone() == (5,)


def test_a_failed_task_emails_its_dag_task_try_and_log_and_its_recovery_too(
    test_warehouse, airflow_env, dag_runner, smtp_sink, first_build
):
    # first_build: the research database is pulled already, so the recovery pulls nothing new
    unreachable = {**airflow_env, "RESEARCH_DB_PORT": "1"}  # nothing listens on port 1
    run = run_airflow(unreachable, "dags", "test", "research_db")
    assert run.returncode != 0

    failed = smtp_sink.wait_for("FAILED research_db.land_research_db", timeout=30)
    assert failed["Subject"].endswith("(try 2)")  # retried once first (tests' config)
    assert failed["To"] == "on-call@example.test"
    body = body_of(failed)
    for line in ("DAG:     research_db", "Task:    land_research_db", "Try:     2"):
        assert line in body
    assert "/dags/research_db/runs/research_db__" not in body  # the Airflow run id, not ours
    assert (
        "/dags/research_db/runs/manual__" in body and "/tasks/land_research_db?try_number=2" in body
    )
    assert "Error:   OperationalError" in body
    assert "port 1" not in body and "127.0.0.1" not in body.split("Log:")[0]

    dag_runner.run_dag("research_db")
    recovered = smtp_sink.wait_for("RECOVERED research_db.land_research_db", timeout=30)
    assert "after failing in manual__" in body_of(recovered)
