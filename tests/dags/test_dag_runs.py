"""`airflow dags test` of every DAG, on the demo data: each source's DAG and the warehouse build
(real task runs, from landed files to the published fact, handed on by Airflow assets), the
landing watch, the weekly report and maintenance (read from a local SMTP server and a restored
backup), and a failing task's emails."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

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
    process_vitals,
    run_airflow,
    run_dag,
    task_states,
)
from tests.dags.smtp_sink import body_of
from tests.warehouse.test_build_plan import VITALS_MODELS
from warehouse import backup
from warehouse.build_plan import record_built
from warehouse.connection import from_environment
from warehouse.phi_scan import (
    IdentifierIndex,
    known_non_identifiers,
    raw_identifiers,
    scan_files,
)

pytestmark = pytest.mark.e2e

SOURCE_DAGS = ("ehr_batch", "claims_batch", "vitals_feed", "fhir_api", "research_db")


def test_each_source_dag_lands_and_the_warehouse_build_publishes(test_warehouse, airflow_env):
    write_patient_extract(test_warehouse.landing_dir / "ehr_patients")
    write_extracts(test_warehouse.landing_dir / "ehr", files=2, rows=50, defects_per_file=2)
    write_claims(test_warehouse.landing_dir / "claims", files=1, claims=20)
    write_vitals(test_warehouse.landing_dir / "vitals", files=2, readings=30)
    process_vitals(airflow_env)  # the processor lands them; vitals_feed checks it, announces them
    for dag_id in SOURCE_DAGS:
        run_dag(airflow_env, dag_id)
    # each landing announced its raw data: the assets the warehouse build is scheduled on
    assert set(asset_events(test_warehouse.warehouse)) == {
        "raw_ehr_patients", "raw_ehr", "raw_claims", "raw_vitals", "raw_fhir", "raw_research",
    }  # fmt: skip
    assert not any(test_warehouse.landing_dir.glob("*/*.*"))  # every file landed and archived
    output = run_dag(airflow_env, "warehouse_build")

    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("analyst")) as conn:
        published = conn.execute("select count(*) from analytics.fct_encounters").fetchone()[0]
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
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
    assert published == 96
    assert run_id.startswith("warehouse_build__manual__")
    assert set(states) <= {"success", "pass"}
    assert gate is True
    assert pulls == {"fhir": 5 + 10 + 10 + 40, "research": 20}
    assert "quality_gate" in output


def test_a_source_dag_with_nothing_new_is_skipped_and_starts_no_build(test_warehouse, airflow_env):
    before = asset_events(test_warehouse.warehouse)
    output = run_dag(airflow_env, "claims_batch")
    assert "no new claims files" in output
    assert asset_events(test_warehouse.warehouse) == before


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
    process_vitals(airflow_env)
    run_dag(airflow_env, "vitals_feed")
    run_dag(airflow_env, "warehouse_build")

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
        unplanned_results = conn.execute(
            "select count(*) from audit.dbt_node_results"
            " where run_id = %s and unique_id like '%%.fct_encounters'",
            (run_id,),
        ).fetchone()[0]
    assert build_schema == other
    assert built == VITALS_MODELS
    # the producer built the plan's selection; a model it left out was skipped, with no result
    states = task_states(test_warehouse.warehouse, "warehouse_build")
    assert states["dbt.dbt_producer_watcher"][0] == "success"
    assert states["dbt.fct_vital_signs_run"][0] == "success"
    assert states["dbt.fct_encounters_run"][0] == "skipped"
    assert unplanned_results == 0
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

    run_dag(airflow_env, "ehr_batch")
    run = run_airflow(airflow_env, "dags", "test", "warehouse_build")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "[visit_date_is_plausible] on raw_ehr.encounters: 3 of 20 rows fail" in output
    for record in (4, 11, 15):
        assert f"{extract.name}#{record}" in output

    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("analyst")) as conn:
        assert conn.execute(PUBLISHED_FACT).fetchone() == before
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
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
    assert published == 0
    assert held == [(record, "visit_date_is_plausible") for record in (4, 11, 15)]

    # Everyone reads the report: built after the failure, it and the task logs hold no
    # identifier value (the quarantined records' values included)
    docs, page = report.build_data_docs(), report.build_report(test_warehouse.warehouse)
    assert "FAIL" in page.read_text()
    # `airflow dags test` runs every task in its own process and writes the task logs to its
    # output (make run keeps it in var/logs/airflow_dags_test_<dag>.log): the failing gate's among them
    task_logs = tmp_path / "airflow_dags_test.log"
    task_logs.write_text(output)
    assert "quality_gate" in output and "GateFailed" in output
    index = IdentifierIndex(raw_identifiers(test_warehouse.warehouse))
    assert index.count > 500
    folders = [docs.parent, page.parent, task_logs, test_warehouse.var_dir / "airflow" / "logs"]
    assert (
        scan_files(folders, index, known_non_identifiers(test_warehouse.warehouse, NON_IDENTIFIERS))
        == []
    )


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


def test_the_weekly_report_emails_the_week_with_the_report_and_no_identifier(
    test_warehouse, airflow_env, smtp_sink, tmp_path
):
    run_dag(airflow_env, "weekly_report")
    message = smtp_sink.wait_for("Weekly report", timeout=10)
    body = body_of(message)
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        builds, passed = conn.execute(
            "select count(*), count(*) filter (where passed) from audit.gate_results"
            " where checkpoint = 'publish_gate'"
        ).fetchone()
        claims_received = conn.execute(
            "select sum(rows_received) from audit.file_ledger where source = 'claims'"
        ).fetchone()[0]
    assert builds == 3 and passed == 2  # the blocked run above failed
    assert f"Quality gate: {passed} of {builds} builds passed" in body
    [claims] = [line.split() for line in body.splitlines() if line.startswith("  claims ")]
    assert claims[:3] == ["claims", str(claims_received), "="]
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


def test_maintenance_deletes_expired_archives_and_keeps_the_newest_backups(
    test_warehouse, airflow_env
):
    archived = sorted((test_warehouse.var_dir / "archive" / "ehr").iterdir())
    expired, kept = archived[0], archived[-1]
    forty_days_ago = datetime.now(UTC).timestamp() - 40 * 86400
    os.utime(expired, (forty_days_ago, forty_days_ago))
    backups_dir = test_warehouse.var_dir / "backups"
    backups_dir.mkdir()
    older = [backups_dir / f"warehouse_2020010{day}T000000000000Z.dump" for day in (1, 2)]
    for path in older:
        path.write_bytes(b"an older backup")

    run_dag(airflow_env, "maintenance")

    assert not expired.exists() and kept.exists()
    backups = backup.backups(backups_dir)
    assert len(backups) == 2 and backups[0] == older[1]  # backups_kept: 2 (tests' config)
    assert oct(backups_dir.stat().st_mode & 0o777) == "0o700"
    assert oct(backups[-1].stat().st_mode & 0o777) == "0o600"


def test_the_newest_backup_restores_into_a_fresh_database_with_the_published_marts(
    test_warehouse,
):
    warehouse = from_environment()
    newest = backup.backups(test_warehouse.var_dir / "backups")[-1]
    backup.restore(warehouse, newest, "restored")
    live = _published_counts(warehouse)
    assert live["fct_encounters"] > 0 and live["dim_patient"] > 0 and len(live) >= 20
    assert _published_counts(warehouse, "restored") == live


def test_the_landing_watch_starts_the_dag_of_a_source_with_a_new_file(test_warehouse, airflow_env):
    [new_file] = write_claims(
        test_warehouse.landing_dir / "claims", files=1, claims=5, defects_per_file=0,
        first_day=date(2024, 9, 1),
    )  # fmt: skip
    settled = datetime.now(UTC).timestamp() - 60
    os.utime(new_file, (settled, settled))
    before = asset_events(test_warehouse.warehouse)

    output = run_dag(airflow_env, "landing_watch")
    assert "no new ehr files" in output  # the other sources' announcements are skipped
    assert asset_events(test_warehouse.warehouse)[len(before) :] == ["landing_claims"]

    run_dag(airflow_env, "claims_batch")  # as the scheduler runs it on that asset
    assert not new_file.exists()
    assert (test_warehouse.var_dir / "archive" / "claims" / new_file.name).exists()
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        assert conn.execute(
            "select rows_received from audit.file_ledger where file_name = %s", (new_file.name,)
        ).fetchone() == (5,)


def test_a_failed_task_emails_its_dag_task_try_and_log_and_its_recovery_too(
    test_warehouse, airflow_env, smtp_sink
):
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

    run_dag(airflow_env, "research_db")
    recovered = smtp_sink.wait_for("RECOVERED research_db.land_research_db", timeout=30)
    assert "after failing in manual__" in body_of(recovered)
