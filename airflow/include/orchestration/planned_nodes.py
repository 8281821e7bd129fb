"""A run builds only the nodes its build plan selects, in one `dbt build` that Cosmos' tasks watch.

The plan is the `plan_build` task's XCom (warehouse/build_plan.py). Cosmos' watcher execution mode
renders a producer task, which runs `dbt build --select <the plan's selection>`, and a task per
model, seed and snapshot that reports the producer's result for its node and the node's tests.

- `skip_unplanned_tasks` (the task after `plan_build`) marks skipped, in one go, the task of every
  node the plan leaves out, and the producer when the plan selects nothing: no dbt starts, and no
  task is started only to skip (about a second each under a scheduler, a tenth under `airflow
  dags test`). A node outside the producer's selection would otherwise be waited for, then run by
  its own task.
- The same decision is taken again by a task started all the same (cleared by hand): the
  producer's pre_execute hook `skip_unless_anything_planned`; a node task's `build_as_planned`,
  called when it would build its node itself (orchestration.node_reports), which also gives it
  the plan's build schema (the producer's env has it templated from the plan, PLANNED_SCHEMA; a
  node task's first try reads the producer's report of its node and needs neither).

The producer's `--select` is PLANNED_SELECTION (set by orchestration.dbt_watcher). The node tasks
run with the trigger rule none_failed, so a planned model's task runs when a parent that did not
change was skipped, and none runs after a parent's task failed.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

log = logging.getLogger(__name__)

PLAN_TASK_ID = "plan_build"
# the producer's `--select` and build schema, templated from the plan
PLANNED_SELECTION = "{{ ti.xcom_pull(task_ids='" + PLAN_TASK_ID + "')['selection'] }}"
PLANNED_SCHEMA = "{{ ti.xcom_pull(task_ids='" + PLAN_TASK_ID + "')['build_schema'] }}"


def _plan(context: Any):
    from warehouse.build_plan import BuildPlan  # when the task runs, not at parse

    planned = context["ti"].xcom_pull(task_ids=PLAN_TASK_ID)
    if planned is None:
        raise AirflowSkipException(f"no build plan: {PLAN_TASK_ID} did not finish")
    return BuildPlan.from_dict(planned)


def _skipped_by(plan, task: Any) -> bool:
    node = getattr(task, "extra_context", {}).get("dbt_node_config")
    return node is not None and not plan.includes(node["unique_id"], node.get("depends_on") or ())


def skip_unplanned_tasks(context: Any, producer_task_id: str) -> None:
    """Mark skipped the tasks this run's plan leaves out (see above)."""
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    plan = _plan(context)
    unplanned = [task.task_id for task in context["dag"].tasks if _skipped_by(plan, task)]
    if plan.builds_nothing:
        unplanned.append(producer_task_id)
    if not unplanned:
        return
    log.info(
        "%s: %s: %s%d dbt task(s) skipped",
        plan.build_schema,
        plan.reason,
        "nothing changed, no dbt build; " if plan.builds_nothing else "",
        len(unplanned),
    )
    raise DownstreamTasksSkipped(tasks=unplanned)


def skip_unless_anything_planned(context: Any) -> None:
    plan = _plan(context)
    if plan.builds_nothing:
        raise AirflowSkipException(
            f"nothing changed since {plan.build_schema}'s last complete build: no dbt build"
        )


def build_as_planned(context: Any) -> None:
    """A node task about to build its node itself: skipped unless the plan selects it; its dbt
    run builds into the plan's build schema."""
    task = context["task"]
    plan = _plan(context)
    if _skipped_by(plan, task):
        raise AirflowSkipException(
            f"{task.task_id} is unchanged since {plan.build_schema}'s last complete build"
        )
    task.env = {**(task.env or {}), "DBT_BUILD_SCHEMA": plan.build_schema}
