"""The warehouse build's dbt part through `airflow dags test`: one `dbt build` in Cosmos' producer
task, and a task per model reporting what it did to the model and its tests (Cosmos' watcher mode).

Two models are broken the same way: a table of that name in the build schema owned by the admin,
which dbt, as `transformer`, cannot replace. One is mended while its task waits for its retry; the
other stays broken. A third model builds, but its test fails: a FHIR Practitioner put into raw
twice. A second run, after a complete build of the schema it builds, has nothing to do.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import psycopg
import pytest

from demo.claims_files import write_claims
from demo.ehr_extracts import write_extracts, write_patient_extract
from orchestration import pipeline
from tests.dags.airflow_cli import DagRunner, model_task, model_version, task_states
from tests.dags.conftest import orchestration_config
from warehouse.build_plan import record_built
from warehouse.connection import AIRFLOW_DATABASE

pytestmark = pytest.mark.e2e

DAG_ID = "warehouse_build"
PRODUCER = "dbt.dbt_producer_watcher"
BUILD_SCHEMA = "build_blue"  # the first build's: nothing is published yet
STAYS_BROKEN = "fct_claims"  # its dependent: mart_claims_by_provider
MENDED_ON_RETRY = "deid_trial_enrollments"  # its dependent: fct_trial_enrollments
TEST_FAILS = "stg_fhir__practitioners"  # its unique test; its dependent: dim_provider
TWICE = "a_practitioner_sent_twice"  # the copy's _dlt_id
# long enough for the test to mend the model between its task's two tries
RETRY_DELAY_SECONDS = 8


def _admin(test_warehouse):
    warehouse = test_warehouse.warehouse
    return psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user), autocommit=True)


def _break(test_warehouse, model: str) -> None:
    """A table named as the model in the build schema, owned by the admin: dbt cannot replace it.
    It says it is the model's version (macros/published_versions.sql), or the build would drop it
    as another version's (the schema's owner may)."""
    with _admin(test_warehouse) as conn:
        conn.execute(f"create table {BUILD_SCHEMA}.{model} (placeholder int)")
        version = model_version(model)
        if version is not None:
            conn.execute(
                f"comment on table {BUILD_SCHEMA}.{model} is 'published version {version}'"
            )


def _mend(test_warehouse, model: str) -> None:
    with _admin(test_warehouse) as conn:
        conn.execute(f"alter table {BUILD_SCHEMA}.{model} owner to transformer")


def _mend_once_waiting_for_retry(test_warehouse, model: str) -> threading.Thread:
    """Mend `model` as soon as its task failed its first try and waits for its retry."""
    task_id = model_task(model)

    def mend() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if task_states(test_warehouse.warehouse, DAG_ID).get(task_id, (None,))[0] == (
                "up_for_retry"
            ):
                _mend(test_warehouse, model)
                return
            time.sleep(0.2)

    thread = threading.Thread(target=mend, daemon=True)
    thread.start()
    return thread


def _results(test_warehouse, run_id_like: str) -> dict[str, set[str]]:
    """Each node's statuses in audit.dbt_node_results for the runs whose id is like the pattern."""
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        rows = conn.execute(
            "select unique_id, status from audit.dbt_node_results where run_id like %s",
            (run_id_like,),
        ).fetchall()
    results: dict[str, set[str]] = {}
    for unique_id, status in rows:
        results.setdefault(unique_id.split(".")[2], set()).add(status)  # its name
    return results


def _relation_exists(test_warehouse, name: str) -> bool:
    with _admin(test_warehouse) as conn:
        return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


@pytest.fixture(scope="module")
def build_env(test_warehouse, airflow_env):
    """Airflow's env with a longer retry delay for the warehouse build; the demo data landed."""
    landing = test_warehouse.landing_dir
    write_patient_extract(landing / "ehr_patients", patients=60)
    write_extracts(landing / "ehr", files=1, rows=40, patients=60, defects_per_file=0)
    write_claims(landing / "claims", files=1, claims=20, defects_per_file=0)
    for source in ("ehr_patients", "ehr", "claims"):
        pipeline.land_files(source, "landing", settle_seconds=0)
    pipeline.land_research_db("landing")
    os.environ["FHIR_BASE_URL"] = airflow_env["FHIR_BASE_URL"]
    try:
        assert pipeline.land_fhir_api("landing")["loaded"] > 0
    finally:
        del os.environ["FHIR_BASE_URL"]
    config = orchestration_config(
        test_warehouse.var_dir, warehouse_build={"retry_delay_seconds": RETRY_DELAY_SECONDS}
    )
    return {**airflow_env, "ORCHESTRATION_CONFIG": config}


@pytest.fixture(scope="module")
def build_runner(build_env):
    """The module's one Airflow process for its runs of the warehouse build."""
    with DagRunner(build_env) as runner:
        yield runner


def _compiled_sql(test_warehouse, task_ids: list[str]) -> dict[str, str]:
    """Each task's compiled SQL as the UI shows it (its rendered fields), in the newest run."""
    warehouse = test_warehouse.warehouse
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE)
    ) as conn:
        rows = conn.execute(
            """
            select task_id, rendered_fields ->> 'compiled_sql' from rendered_task_instance_fields
            where dag_id = %(dag)s and task_id = any(%(tasks)s) and run_id = (
                select run_id from dag_run where dag_id = %(dag)s order by id desc limit 1
            )
            """,
            {"dag": DAG_ID, "tasks": task_ids},
        ).fetchall()
    return dict(rows)


@dataclass
class FailingRun:
    output: str
    exit_code: int
    states: dict[str, tuple[str, int]]
    compiled_sql: dict[str, str]  # of a built model's task and of the broken one's
    results: dict[str, set[str]]  # each node's statuses in the run's dbt results
    built: dict[str, bool]  # whether some relations exist after the run
    publications: int


@pytest.fixture(scope="module")
def failing_run(test_warehouse, build_runner) -> FailingRun:
    """The first build, with one model broken for good and one mended before its retry."""
    _break(test_warehouse, STAYS_BROKEN)
    _break(test_warehouse, MENDED_ON_RETRY)
    with _admin(test_warehouse) as conn:
        conn.execute(
            "insert into raw_fhir.resources"
            " (server, resource, last_updated, resource_type, id, _pulled_in, _dlt_load_id, _dlt_id)"
            " select server, resource, last_updated, resource_type, id, _pulled_in, _dlt_load_id, %s"
            " from raw_fhir.resources where resource_type = 'Practitioner' limit 1",
            (TWICE,),
        )
    mender = _mend_once_waiting_for_retry(test_warehouse, MENDED_ON_RETRY)
    exit_code, outputs = build_runner.run_dags(DAG_ID, check=False)
    mender.join(timeout=5)
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        publications = conn.execute("select count(*) from audit.publications").fetchone()[0]
    return FailingRun(
        output=outputs[DAG_ID],
        exit_code=exit_code,
        states=task_states(test_warehouse.warehouse, DAG_ID),
        compiled_sql=_compiled_sql(
            test_warehouse, [model_task("fct_encounters"), model_task(STAYS_BROKEN)]
        ),
        results=_results(test_warehouse, "warehouse_build__%"),
        built={
            name: _relation_exists(test_warehouse, f"{BUILD_SCHEMA}.{name}")
            for name in ("mart_claims_by_provider", "dim_provider", "fct_trial_enrollments")
        },
        publications=publications,
    )


def test_a_failing_model_fails_the_run_and_blocks_its_dependents(failing_run):
    states = failing_run.states
    assert failing_run.exit_code != 0, failing_run.output[-3000:]
    assert states[PRODUCER][0] == "failed"  # its dbt build reported the failures
    assert states[model_task(STAYS_BROKEN)] == ("failed", 2)  # retried once, still broken
    assert states[model_task("mart_claims_by_provider")][0] == "upstream_failed"
    assert not failing_run.built["mart_claims_by_provider"]
    # models that do not read it were built and tested (dim_patient: its relationships test
    # with the broken model counts for that model, on which it is defined)
    for built in ("fct_encounters", "dim_patient"):
        assert states[model_task(built)] == ("success", 1), built
    # a failed build is not recorded, gated or published
    for step in ("record_build", "quality_gate", "publish"):
        assert states[step][0] == "upstream_failed", step
    assert failing_run.publications == 0
    assert failing_run.results[STAYS_BROKEN] == {"error"}
    assert failing_run.results["mart_claims_by_provider"] == {"skipped"}
    # each model's task shows the SQL dbt ran for it (from the producer's report of the model,
    # or its own retry's build), the failed one's too
    for model in ("fct_encounters", STAYS_BROKEN):
        sql = failing_run.compiled_sql.get(model_task(model)) or ""
        assert "select" in sql.lower() and "from" in sql.lower(), (model, sql[:200])


def test_a_failing_test_fails_its_models_task_and_blocks_its_dependents(failing_run):
    states, results = failing_run.states, failing_run.results
    # the model was built, its unique test failed: its task fails, on its retry too
    assert "success" in results[TEST_FAILS]
    assert "fail" in results[f"unique_{TEST_FAILS}_fhir_practitioner_reference"]
    assert states[model_task(TEST_FAILS)] == ("failed", 2)
    assert (
        f"model.healthcare_warehouse.{TEST_FAILS} was built but its tests failed"
        in failing_run.output
    )
    assert states[model_task("dim_provider")][0] == "upstream_failed"
    assert not failing_run.built["dim_provider"]


def test_a_retry_of_the_failed_model_succeeds_once_it_is_mended(failing_run):
    states, results = failing_run.states, failing_run.results
    assert states[model_task(MENDED_ON_RETRY)] == ("success", 2)
    # its dependent, which the producer's build skipped, was built on its own retry too
    assert states[model_task("fct_trial_enrollments")] == ("success", 2)
    assert failing_run.built["fct_trial_enrollments"]
    # the producer's try failed it; the retry built it and its tests (`dbt build --select`)
    assert results[MENDED_ON_RETRY] == {"error", "success"}
    # ... and the dependent's retry its test across two models, which the producer's build skipped
    across = "relationships_fct_trial_enrollments_v2_patient_key__patient_key__ref_dim_patient_"
    assert results[across] == {"skipped", "pass"}


@pytest.fixture(scope="module")
def nothing_planned_run(test_warehouse, build_runner, failing_run):
    """A run after a complete build of the schema it builds, with nothing new since."""
    with _admin(test_warehouse) as conn:
        conn.execute(f"drop table {BUILD_SCHEMA}.{STAYS_BROKEN}")
        conn.execute("delete from raw_fhir.resources where _dlt_id = %s", (TWICE,))
    planned = pipeline.plan_build(BUILD_SCHEMA, "by_hand")
    assert planned["nodes"] is None  # the failed build left no complete one: everything
    built = test_warehouse.dbt("build", build_schema=BUILD_SCHEMA, run_id="by_hand")
    assert built.returncode == 0, built.stdout[-3000:]
    record_built(test_warehouse.warehouse, BUILD_SCHEMA, "by_hand")
    before = _results(test_warehouse, "%")
    output = build_runner.run_dag(DAG_ID)
    return before, output, task_states(test_warehouse.warehouse, DAG_ID)


def test_a_plan_that_selects_nothing_starts_no_dbt(test_warehouse, nothing_planned_run):
    before, output, states = nothing_planned_run
    # skipped with every node task before any started (`airflow dags test` writes every task's
    # log to its output): no dbt ran, no result was recorded
    assert states["skip_unplanned"][0] == "success"
    dbt_tasks = [task for task in states if task.startswith("dbt.")]
    skipped_at_once = len(dbt_tasks) - 2  # all but the two gates after the producer
    assert f"nothing changed, no dbt build; {skipped_at_once} dbt task(s) skipped" in output
    assert "Running with dbt=" not in output
    node_states = {states[task][0] for task in dbt_tasks}
    # success: the gates after the producer (Cosmos' and build_ended)
    assert node_states == {"skipped", "success"}
    assert states[PRODUCER][0] == "skipped"
    assert states["dbt.dbt_producer_watcher_done"][0] == "success"
    assert states["dbt.build_ended"][0] == "success"
    assert _results(test_warehouse, "%") == before
    # the schema's build, complete and unchanged, is gated and published
    assert states["publish"][0] == "success"
