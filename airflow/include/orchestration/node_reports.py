"""What the producer's build did to each node, in one XCom per node: a node task's one read.

Cosmos' watcher producer pushes four XComs per node (its status, its last dbt event, its compiled
SQL, its model's tests' status) and each node task's poke reads them, the producer task's state
and its startup events one call at a time: about nine calls to Airflow's execution API per node
task, most of a node task's time (docs/architecture.md, with the figures). Here:

- the producer (orchestration.dbt_watcher) folds a node's four keys into one report, a dict with
  `status`, `event`, `compiled_sql` and `tests_status`, pushed under `report_key(unique_id)`
  (`NodeReports.fold`; orchestration.xcom_pushes merges the fields and pushes each report once
  per change, on its thread);
- a node task's first try reads that one report as its fields are rendered
  (`rendering_with_the_report`, its render_template_fields): the node's compiled SQL is one of
  its rendered fields from the start, so Airflow stores them once, not twice as Cosmos' poke
  makes it; then its poke (`poke_from_the_report`) judges it: the node failed, was skipped by
  dbt (its parent failed: Cosmos reports it failed, so that a retry builds it) or was built;
  built, its tests must have passed too (a test across several models counts for the model it
  is defined on: dbt_watcher.tests_by_attached_model);
- with no report (a retry, a task cleared by hand, a node the producer did not reach) the task is
  skipped unless the plan selects its node (planned_nodes.build_as_planned) and Cosmos' own poke
  decides: it finds no status of Cosmos' own either, so it runs `dbt build --select <node>`
  (the producer has ended: dbt_watcher's `build_ended`), as it does for any node its producer
  did not report. Every such run goes through `building_as_planned` (Cosmos'
  `_fallback_to_non_watcher_run`, from a poke or from its trigger's event in another process):
  the plan is read there again and the run builds into the plan's build schema.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

REPORT_SUFFIX = "_report"
# each of Cosmos' keys of a node (its unique id, dots as "__", then the suffix), and the field of
# the report it becomes
COSMOS_KEY_FIELDS = (
    ("_status", "status"),
    ("_dbt_event", "event"),
    ("_compiled_sql", "compiled_sql"),
    ("_tests_status", "tests_status"),
)


def _key_prefix(unique_id: str) -> str:
    return unique_id.replace(".", "__")  # as Cosmos makes its keys


def report_key(unique_id: str) -> str:
    return _key_prefix(unique_id) + REPORT_SUFFIX


class NodeReports:
    """The producer's side: which of its pushes are a field of a node's report."""

    def __init__(self, unique_ids: Iterable[str]) -> None:
        self._by_prefix = {_key_prefix(unique_id): unique_id for unique_id in unique_ids}

    def fold(self, key: str, value: Any) -> tuple[str, str, Any] | None:
        """(the report's key, its field, the field's value) when `key` is Cosmos' key of a node
        with a task; None for any other key (pushed as it is). A node is found by its whole
        unique id, and a status by its shape: model `a_tests`'s status key is model `a`'s tests'
        status key, but Cosmos pushes a node's status as a dict, its tests' as a string."""
        for suffix, field in COSMOS_KEY_FIELDS:
            if not key.endswith(suffix):
                continue
            unique_id = self._by_prefix.get(key[: -len(suffix)])
            if unique_id is None:
                continue
            if field == "status":
                if not isinstance(value, dict):
                    continue
                value = value.get("status")  # and its assets' URIs: no asset per model here
            return report_key(unique_id), field, value
        return None


def rendering_with_the_report(context: Any, jinja_env: Any = None) -> None:
    """A node task's render_template_fields (set by dbt_watcher.watch_the_planned_build): see
    above. The task is the running copy, context's."""
    task, ti = context["task"], context["ti"]
    type(task).render_template_fields(task, context, jinja_env)
    task.report_of_the_build = None
    if ti.try_number == 1:
        report = ti.xcom_pull(task_ids=task.producer_task_id, key=report_key(task.model_unique_id))
        task.report_of_the_build = report
        if report and report.get("compiled_sql"):
            task.compiled_sql = report["compiled_sql"]  # the UI shows it with the task's fields


def poke_from_the_report(context: Any) -> bool:
    """A node task's poke (set by dbt_watcher.watch_the_planned_build): see above."""
    task = context["task"]
    report = getattr(task, "report_of_the_build", None) if context["ti"].try_number == 1 else None
    if not report or report.get("status") is None:
        from orchestration.planned_nodes import build_as_planned

        build_as_planned(context)
        return type(task).poke(task, context)
    return _judged(task, context, report)


def building_as_planned(try_number: int, context: Any) -> bool:
    """A node task's `_fallback_to_non_watcher_run`, Cosmos' one way to run dbt for its node: as
    the plan says (skipped unless it selects the node; into its build schema), then Cosmos'."""
    from orchestration.planned_nodes import build_as_planned

    task = context["task"]
    build_as_planned(context)
    return type(task)._fallback_to_non_watcher_run(task, try_number, context)


def _judged(task: Any, context: Any, report: dict) -> bool:
    from airflow.sdk.exceptions import AirflowException, AirflowSkipException
    from cosmos.operators._watcher.state import (
        _log_dbt_event,
        is_dbt_node_status_skipped,
        is_dbt_node_status_success,
    )

    unique_id, status = task.model_unique_id, report["status"]
    log.info("%s: %s in the build of %s", unique_id, status, task.producer_task_id)
    _log_dbt_event(report.get("event"))  # dbt's line for it, as Cosmos' poke logs it
    if is_dbt_node_status_skipped(status):
        raise AirflowSkipException(f"{unique_id} was skipped by the dbt command")
    if not is_dbt_node_status_success(status):
        raise AirflowException(f"{unique_id} finished with status '{status}'")
    producer = context["dag"].get_task(task.producer_task_id)
    tests_status = report.get("tests_status")
    if producer.tests_per_model.get(unique_id) and tests_status != "pass":
        raise AirflowException(
            f"{unique_id} was built but its tests "
            + ("failed" if tests_status == "fail" else "did not all report")
            + f" in the build ({task.producer_task_id}'s log names each)"
        )
    return True
