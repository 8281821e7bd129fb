"""Every DAG imports cleanly, fast and without the database, and carries an owner, tags, retries
with backoff, timeouts and a schedule or trigger (Astronomer's integrity test, and more).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from common import settings
from orchestration.dag_settings import dag_config
from tests.dags.airflow_cli import model_task
from warehouse.throwaway import free_port

DAG_FILES = sorted(settings.DAGS_DIR.glob("*.py"))

# As the dag-processor parses: Airflow and Cosmos imported once, then each DAG file parsed and
# timed in a process forked from that one (nothing of one file's parse stays for the next).
PARSE_EACH_FILE = """
import json, os, sys, time
import airflow, cosmos
from airflow.dag_processing.dagbag import DagBag

def parse(path):
    started = time.perf_counter()
    bag = DagBag(path)
    return {
        "seconds": time.perf_counter() - started,
        "errors": {file: str(error)[-2000:] for file, error in bag.import_errors.items()},
        "dags": sorted(bag.dags),
    }

parsed = {}
for path in sys.argv[1:]:
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(reading)
        with os.fdopen(writing, "w") as out:
            json.dump(parse(path), out)
        os._exit(0)
    os.close(writing)
    with os.fdopen(reading) as answer:
        parsed[os.path.basename(path)] = json.loads(answer.read() or "null")
    os.waitpid(child, 0)
print(json.dumps(parsed))
"""

DESCRIBE_DAGS = """
import json
from airflow.dag_processing.dagbag import DagBag

def names(condition):
    if hasattr(condition, "objects"):  # AssetAny, AssetAll
        return [name for each in condition.objects for name in names(each)]
    return [condition.name]

def assets_of(timetable):
    condition = getattr(timetable, "asset_condition", None)
    return sorted(names(condition)) if condition else []

def watcher(dag):
    producer = dag.task_dict.get("dbt.dbt_producer_watcher")
    if producer is None:
        return None
    nodes = [t for t in dag.tasks if getattr(t, "extra_context", {}).get("dbt_node_config")]
    return {
        "select": producer.select,
        "upstream": sorted(producer.upstream_task_ids),
        "tests_per_model": producer.tests_per_model,
        "all_done": sorted(t.task_id for t in dag.tasks if t.trigger_rule == "all_done"),
        "downstream": sorted(producer.downstream_task_ids),
        "flags": producer.dbt_cmd_flags,
        "retry_command": dag.task_dict["RETRIED_TASK"].base_cmd,
        "emit_assets": sorted(t.task_id for t in dag.tasks if getattr(t, "emit_datasets", False)),
        "event_parser": producer._make_parse_callable.__qualname__,
        "dbt_runs": sorted({producer.run_dbt_runner.__qualname__, producer.run_subprocess.__qualname__}),
        "dbt_log_file": sorted({t.env.get("DBT_LOG_LEVEL_FILE") for t in dag.tasks if hasattr(t, "env") and t.task_id.startswith("dbt.")}),
        "node_tasks": sorted(t.task_id for t in nodes),
        "openlineage": sorted({t.calculate_openlineage_events_completes.__qualname__ for t in [producer, *nodes]}),
        "after_the_build": sorted(t.task_id for t in nodes if "dbt.build_ended" in t.upstream_task_ids),
        "node_hooks": sorted({
            (t.render_template_fields.__qualname__, t.poke.__qualname__, t._fallback_to_non_watcher_run.__qualname__)
            for t in nodes
        }),
        "build_schema_env": {
            "producer": producer.env.get("DBT_BUILD_SCHEMA"),
            "nodes": sorted({str(t.env.get("DBT_BUILD_SCHEMA")) for t in nodes}),
        },
    }

bag = DagBag()
print(json.dumps({
    "errors": {path: str(error)[-2000:] for path, error in bag.import_errors.items()},
    "dags": {
        dag_id: {
            "tags": sorted(dag.tags),
            "schedule": type(dag.timetable).__name__,
            "timetable": repr(getattr(dag.timetable, "timetable", dag.timetable)),
            "assets": assets_of(dag.timetable),
            "deadline": bool(dag.deadline),
            "tasks": sorted(dag.task_ids),
            "owners": sorted({task.owner for task in dag.tasks}),
            "retries": {task.task_id: task.retries for task in dag.tasks},
            "backoff": {task.task_id: task.retry_exponential_backoff for task in dag.tasks},
            "timeouts": {task.task_id: task.execution_timeout is not None for task in dag.tasks},
            "callbacks": {task.task_id: bool(task.on_failure_callback) for task in dag.tasks},
            "watcher": watcher(dag),
        }
        for dag_id, dag in bag.dags.items()
    },
}))
"""


def _python(script: str, env: dict, *args: str) -> dict:
    result = subprocess.run(
        [str(settings.VENV_BIN / "python"), "-c", script, *args],
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _describe(airflow_env: dict) -> dict:
    return _python(DESCRIBE_DAGS.replace("RETRIED_TASK", model_task("fct_encounters")), airflow_env)


def test_every_dag_file_parses_in_under_2_seconds_without_touching_the_database(airflow_env):
    # nothing listens here: a DAG file that connects at import fails or hangs
    closed = free_port()
    env = {
        **airflow_env,
        "WAREHOUSE_URL": f"postgresql://postgres:unused@127.0.0.1:{closed}/warehouse",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://airflow:unused@127.0.0.1:{closed}/airflow"
        ),
    }
    parsed = _python(PARSE_EACH_FILE, env, *map(str, DAG_FILES))
    assert None not in parsed.values(), parsed  # a parse that died without an answer
    print({name: round(result["seconds"], 2) for name, result in parsed.items()})
    assert len(parsed) >= 9
    for name, result in parsed.items():
        assert result["errors"] == {}, name
        assert result["dags"] == [Path(name).stem], name
        assert result["seconds"] < 2, f"{name} took {result['seconds']:.2f}s to parse"


def test_every_dag_has_owner_tags_retries_with_backoff_timeouts_and_a_schedule(airflow_env):
    described = _describe(airflow_env)
    assert described["errors"] == {}
    assert len(described["dags"]) == len(DAG_FILES)
    for dag_id, dag in described["dags"].items():
        assert dag["tags"], dag_id
        assert dag["owners"] == [dag_config(dag_id)["owner"]], dag_id
        assert dag["schedule"] != "NullTimetable", f"{dag_id} has no schedule or trigger"
        # the gate's verdict and a health check stand as they are (the next minute's run checks
        # the processor again); the dbt producer's build is never retried as a whole (a retry of a
        # model's task runs that model)
        not_retried = {"quality_gate", "check_vitals_processor", "dbt.dbt_producer_watcher"}
        retried = {task: n for task, n in dag["retries"].items() if task not in not_retried}
        assert all(n >= 1 for n in retried.values()), dag_id
        assert all(dag["backoff"][task] > 1 for task in retried), dag_id
        assert all(dag["timeouts"].values()), dag_id
        assert all(dag["callbacks"].values()), f"{dag_id}: a task without a failure email"


def test_each_workflow_runs_on_its_schedule_or_on_arrivals(airflow_env):
    dags = _describe(airflow_env)["dags"]
    assert "'0 */4 * * *'" in dags["claims_batch"]["timetable"]
    assert dags["claims_batch"]["assets"] == ["landing_claims"]
    assert "'0 2 * * *'" in dags["ehr_batch"]["timetable"]
    assert dags["ehr_batch"]["assets"] == ["landing_ehr", "landing_ehr_patients"]
    assert "'* * * * *'" in dags["vitals_feed"]["timetable"]
    # the vitals processor watches its own folder: the landing watch does not announce vitals
    assert "announce_vitals" not in dags["landing_watch"]["tasks"]
    assert {"check_vitals_processor", "announce_landed_vitals"} <= set(dags["vitals_feed"]["tasks"])
    assert "'15 * * * *'" in dags["fhir_api"]["timetable"]
    assert "'30 2 * * *'" in dags["research_db"]["timetable"]
    assert "'0 7 * * 1'" in dags["weekly_report"]["timetable"]
    assert dags["landing_watch"]["schedule"] == "ContinuousTimetable"
    assert dags["warehouse_build"]["schedule"] == "AssetOrTimeSchedule"
    assert "'45 * * * *'" in dags["warehouse_build"]["timetable"]  # at least hourly
    assert dags["warehouse_build"]["assets"] == sorted(
        f"raw_{source}"
        for source in ("ehr_patients", "ehr", "claims", "vitals", "fhir", "research")
    )
    # deadlines on the build and the device feed (left out under `airflow dags test` only)
    assert {dag_id for dag_id, dag in dags.items() if dag["deadline"]} == {
        "warehouse_build",
        "vitals_feed",
    }


def test_cosmos_renders_one_build_and_a_task_per_model_and_its_tests(airflow_env):
    tasks = _describe(airflow_env)["dags"]["warehouse_build"]["tasks"]
    # the producer runs one `dbt build`; each model's task reports on the model and its tests
    assert "dbt.dbt_producer_watcher" in tasks
    for model in ("stg_ehr__encounters", "patient_crosswalk", "deid_encounters", "fct_encounters"):
        assert model_task(model) in tasks
    assert "dbt.icd10cm_codes_seed" in tasks and "dbt.patient_snapshot_snapshot" in tasks
    # no task of a test's own: a test across two models is reported with the model it is defined on
    assert not [task for task in tasks if "test" in task.removeprefix("dbt.")]
    watcher = _describe(airflow_env)["dags"]["warehouse_build"]["watcher"]
    tests_of = {model.split(".")[2]: tests for model, tests in watcher["tests_per_model"].items()}
    across = "relationships_fct_claims_v2_patient_key__patient_key__ref_dim_patient_"
    assert any(test.split(".")[-2] == across for test in tests_of["fct_claims"])
    assert not any(test.split(".")[-2] == across for test in tests_of["dim_patient"])
    # it builds what the plan selects, once what the plan leaves out is skipped; every node task
    # reads its results after it ended, however it ended (build_ended), not only those with no
    # parent node: a planned model whose parents the plan leaves out would start beside it
    assert watcher["select"] == "{{ ti.xcom_pull(task_ids='plan_build')['selection'] }}"
    assert watcher["upstream"] == ["skip_unplanned"]
    assert watcher["downstream"] == ["dbt.build_ended", "dbt.dbt_producer_watcher_done"]
    assert watcher["all_done"] == ["dbt.build_ended"]
    assert len(watcher["node_tasks"]) >= 50
    assert watcher["after_the_build"] == watcher["node_tasks"]
    # a node task reads the producer's report of its node as its fields are rendered and judges
    # it in its poke; a dbt run of its own builds as the plan says, into the plan's build schema
    assert watcher["node_hooks"] == [
        ["rendering_with_the_report", "poke_from_the_report", "building_as_planned"]
    ]
    # no OpenLineage events made (no provider sends them), nor the task's env copied for them
    assert watcher["openlineage"] == ["no_openlineage_events"]
    assert watcher["build_schema_env"] == {
        "producer": "{{ ti.xcom_pull(task_ids='plan_build')['build_schema'] }}",
        "nodes": ["None"],
    }
    # its build runs the tests (no `--resource-type`); a retried node task builds node and tests
    assert watcher["flags"] == []
    assert watcher["retry_command"] == ["build"]
    # no asset event per dbt model, from the producer nor from a model's task
    assert watcher["emit_assets"] == []
    # it pushes to XCom only what a node task reads (tests/dags/test_dbt_watcher.py)
    assert watcher["event_parser"].startswith("reporting_what_node_tasks_read.")
    # ... on a thread of their own, every push made before its dbt run ends
    assert [run.split(".")[0] for run in watcher["dbt_runs"]] == ["finishing_its_pushes"]
    # dbt's debug log file, in the task's copy of the project, deleted as the task ends: none
    assert watcher["dbt_log_file"] == ["none"]
    steps = {"validate_landed", "plan_build", "skip_unplanned"}
    assert steps | {"record_build", "quality_gate", "publish"} <= set(tasks)
