"""A node task's side of the producer's reports (orchestration.node_reports) and of the plan
(orchestration.planned_nodes.build_as_planned), on the task runner's calls: its fields rendered
(the report read once, on a first try only), its poke judging the report, a dbt run of its own
building into the plan's build schema. The whole path runs in tests/dags/test_build_watcher.py;
here each decision, with a task instance that answers XCom pulls from a dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from orchestration.node_reports import poke_from_the_report, rendering_with_the_report, report_key
from orchestration.planned_nodes import PLAN_TASK_ID, build_as_planned
from warehouse.build_plan import BuildPlan

PRODUCER = "dbt.dbt_producer_watcher"
MODEL = "model.healthcare_warehouse.fct_encounters"
PARENT = "model.healthcare_warehouse.stg_ehr__encounters"


@dataclass
class TaskInstance:
    try_number: int = 1
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)
    pulls: list[tuple[str, str]] = field(default_factory=list)

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        self.pulls.append((task_ids, key))
        return self.xcoms.get((task_ids, key))


class NodeTask(SimpleNamespace):
    """The attributes of a Cosmos node task the hooks read; rendering renders nothing."""

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        self.rendered = True


def _context(report: dict | None, *, try_number: int = 1, tests: list[str] = ()) -> dict:
    ti = TaskInstance(try_number)
    if report is not None:
        ti.xcoms[(PRODUCER, report_key(MODEL))] = report
    task = NodeTask(
        task_id="dbt.fct_encounters_run",
        producer_task_id=PRODUCER,
        model_unique_id=MODEL,
        extra_context={"dbt_node_config": {"unique_id": MODEL, "depends_on": [PARENT]}},
        env={"PIPELINE_RUN_ID": "warehouse_build__a_run"},
        compiled_sql="",
    )
    producer = SimpleNamespace(tests_per_model={MODEL: list(tests)} if tests else {})
    dag = SimpleNamespace(get_task=lambda task_id: {PRODUCER: producer}[task_id])
    return {"task": task, "ti": ti, "dag": dag}


def _rendered_then_poked(context: dict) -> bool:
    rendering_with_the_report(context)
    return poke_from_the_report(context)


def test_a_first_try_reads_the_report_once_and_shows_its_compiled_sql():
    context = _context({"status": "success", "compiled_sql": "select 1 as encounter_key"})
    assert _rendered_then_poked(context) is True
    assert context["task"].rendered  # the task's own fields first
    assert context["task"].compiled_sql == "select 1 as encounter_key"
    assert context["ti"].pulls == [(PRODUCER, report_key(MODEL))]  # one read, at rendering


@pytest.mark.parametrize(
    ("tests_status", "says"), [("fail", "failed"), (None, "did not all report")]
)
def test_a_model_built_fails_its_task_unless_its_tests_passed(tests_status, says):
    report = {"status": "success", "tests_status": tests_status}
    with pytest.raises(AirflowException, match=f"{MODEL} was built but its tests {says}"):
        _rendered_then_poked(_context(report, tests=["test.healthcare_warehouse.unique_x"]))
    report["tests_status"] = "pass"
    assert _rendered_then_poked(_context(report, tests=["test.healthcare_warehouse.unique_x"]))


def test_a_failed_node_fails_its_task_and_one_dbt_skipped_is_skipped():
    # Cosmos reports a node dbt skipped after its parent failed as failed (a retry builds it)
    for status in ("error", "failed"):
        with pytest.raises(AirflowException, match=f"finished with status '{status}'"):
            _rendered_then_poked(_context({"status": status}))
    with pytest.raises(AirflowSkipException, match="skipped by the dbt command"):
        _rendered_then_poked(_context({"status": "skipped"}))


def _plan(nodes: list[str] | None, build_schema: str = "build_green") -> dict:
    return BuildPlan(
        build_schema=build_schema,
        run_id="warehouse_build__a_run",
        nodes=None if nodes is None else tuple(nodes),
        unique_ids=frozenset() if nodes is None else frozenset(nodes),
        reason="a test",
    ).as_dict()


def test_a_retry_reads_no_report_and_builds_as_the_plan_says():
    context = _context({"status": "error"}, try_number=2)
    context["ti"].xcoms[(PLAN_TASK_ID, "return_value")] = _plan(None)
    rendering_with_the_report(context)
    assert context["ti"].pulls == []  # a retry builds its node: no report read
    build_as_planned(context)
    assert context["task"].env == {
        "PIPELINE_RUN_ID": "warehouse_build__a_run",
        "DBT_BUILD_SCHEMA": "build_green",
    }


def test_a_node_the_plan_leaves_out_is_skipped_before_any_dbt_run():
    context = _context(None, try_number=2)
    context["ti"].xcoms[(PLAN_TASK_ID, "return_value")] = _plan([PARENT])
    with pytest.raises(AirflowSkipException, match="unchanged since build_green"):
        build_as_planned(context)
    assert "DBT_BUILD_SCHEMA" not in context["task"].env
    # no plan at all (plan_build did not finish): skipped too
    with pytest.raises(AirflowSkipException, match="no build plan"):
        build_as_planned(_context(None, try_number=2))
