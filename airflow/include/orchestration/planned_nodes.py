"""Cosmos renders every dbt node as a task; a run builds only the nodes its build plan selects.

`skip_unless_planned` is each Cosmos task's pre_execute hook: it skips the task when this run's
plan (the `plan_build` task's XCom, warehouse/build_plan.py) leaves its node out. Cosmos'
tasks run with the trigger rule none_failed, so a planned model runs even when a parent that did
not change was skipped, and none runs after a parent failed.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

PLAN_TASK_ID = "plan_build"


def skip_unless_planned(context: Any) -> None:
    from warehouse.build_plan import BuildPlan  # when the task runs, not at parse

    node = getattr(context["task"], "extra_context", {}).get("dbt_node_config")
    if node is None:
        return
    plan = BuildPlan.from_dict(context["ti"].xcom_pull(task_ids=PLAN_TASK_ID))
    if not plan.includes(node["unique_id"], node.get("depends_on") or ()):
        raise AirflowSkipException(
            f"{node['unique_id']} is unchanged since {plan.build_schema}'s last complete build"
        )
