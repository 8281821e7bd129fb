"""Airflow DAG `warehouse_build`: validate what landed, build with dbt (one `dbt build`, each model
and its tests reported by a Cosmos task of the model's own), gate, publish.

Started by the raw data it depends on: any source DAG's `raw_*` asset, and at least hourly (a
landing whose event arrives while a build runs may start no build of its own). Each run builds
only what changed since the build schema's last complete build: `plan_build` asks dbt, the
producer task runs one `dbt build` of what it selects (Cosmos' watcher execution mode), and each
model's task then reports its model's result and its tests' (a task the plan leaves out is
skipped). docs/architecture.md says why, with the figures. Cosmos renders the graph from the parsed
dbt manifest (`make manifest`), so parsing this file never runs dbt.

A thin wiring diagram: every step's logic lives in the stages (`warehouse/`, `expectations/`), behind
`airflow/include/orchestration/pipeline.py`, imported by
the task that runs it (the dag-processor parses this file every few seconds).
"""

from __future__ import annotations

import cosmos  # noqa: F401  (import cosmos before cosmos.constants)
from airflow.sdk import dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, LoadMode, TestBehavior

from common import settings
from orchestration import assets, dbt_manifest, runs
from orchestration.dag_settings import dag_arguments
from orchestration.dbt_profile import DBT_PROFILE
from orchestration.dbt_watcher import producer_task_id, watch_the_planned_build
from orchestration.planned_nodes import PLAN_TASK_ID, PLANNED_SCHEMA, skip_unless_anything_planned

# every dbt task's environment
DBT_ENV = {
    "PIPELINE_RUN_ID": runs.TEMPLATE,
    # dbt's debug log file would go to the task's copy of the project, deleted as the task ends;
    # its lock held dbt's threads up (docs/architecture.md). The task's log keeps dbt's messages.
    "DBT_LOG_LEVEL_FILE": "none",
}


@dag(**dag_arguments("warehouse_build", __doc__, assets=assets.any_raw_data()))
def warehouse_build():
    # records and quarantines what breaks a check; the gate before publishing reads its verdict
    @task
    def validate_landed(dag_run=None) -> dict:
        from orchestration import pipeline

        return pipeline.validate_landed_batches(runs.pipeline_run_id(dag_run))

    # the build schema (the one analysts do not read, or the published one when it is current)
    # and what to build in it
    @task(task_id=PLAN_TASK_ID)
    def plan_build(dag_run=None) -> dict:
        from orchestration import pipeline

        return pipeline.plan_next_build(runs.pipeline_run_id(dag_run))

    # marks skipped, before they start, the dbt tasks the plan leaves out (the producer's build
    # too when it selects nothing)
    @task
    def skip_unplanned(producer_task_id: str, **context) -> None:
        from orchestration.planned_nodes import skip_unplanned_tasks

        skip_unplanned_tasks(context, producer_task_id)

    # after the dbt tasks, which a plan may skip: runs unless one failed
    @task(trigger_rule="none_failed")
    def record_build(plan: dict, dag_run=None) -> None:
        from orchestration import pipeline

        pipeline.record_build(plan["build_schema"], runs.pipeline_run_id(dag_run))

    @task(retries=0)
    def quality_gate(plan: dict, dag_run=None) -> None:
        from orchestration import pipeline

        pipeline.quality_gate(plan["build_schema"], runs.pipeline_run_id(dag_run))

    @task
    def publish(plan: dict, dag_run=None) -> list[str]:
        from orchestration import pipeline

        return pipeline.publish(plan["build_schema"], runs.pipeline_run_id(dag_run))

    manifest = dbt_manifest.checked_manifest()
    dbt_build = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            settings.DBT_PROJECT_DIR,
            manifest_path=manifest,
            project_name=None,
        ),
        profile_config=DBT_PROFILE,
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            dbt_executable_path=str(settings.VENV_BIN / "dbt"),
            # the producer: one `dbt build` of what the plan selects, never retried as a whole
            # (a retry of a model's task runs that model); no dbt at all when nothing is planned
            setup_operator_args={
                "pre_execute": skip_unless_anything_planned,
                # the plan's build schema (a node task's first try reads the producer's report of
                # its node; one building its node itself takes the schema from the plan then)
                "env": {**DBT_ENV, "DBT_BUILD_SCHEMA": PLANNED_SCHEMA},
                "retries": 0,
                # no Airflow asset per model it built (render_config below: nor from a model's task)
                "emit_datasets": False,
            },
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            # a task per model reports its result and its tests' (dbt_watcher: the producer's
            # build runs the tests all the same)
            test_behavior=TestBehavior.NONE,
            # a test across two models is reported with the model it is defined on
            # (dbt_watcher; a detached test's own task would get no result from the producer)
            should_detach_multiple_parents_tests=False,
            # no Airflow asset per dbt model: the build's own assets are the raw data it reads
            emit_datasets=False,
        ),
        operator_args={
            "trigger_rule": "none_failed",
            "append_env": True,
            "env": DBT_ENV,
        },
    )
    plan = plan_build()
    skipper = skip_unplanned(producer_task_id(dbt_build.group_id))
    validate_landed() >> plan >> skipper
    watch_the_planned_build(dbt_build, skipper, manifest)
    recorded = record_build(plan)
    gate = quality_gate(plan)
    dbt_build >> recorded >> gate >> publish(plan)


warehouse_build()
