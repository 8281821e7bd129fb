"""Airflow DAG `warehouse_build`: validate what landed, build with dbt (each model and its tests
one Cosmos task), gate, publish.

Started by the raw data it depends on: any source DAG's `raw_*` asset, and at least hourly (a
landing whose event arrives while a build runs may start no build of its own). Each run builds
only what changed since the build schema's last complete build: `plan_build` asks dbt, and every Cosmos
task whose node the plan leaves out is skipped. Cosmos renders the graph from the parsed dbt
manifest (`make manifest`), so parsing this file never runs dbt.

A thin wiring diagram: every step's logic lives in the stages (`warehouse/`, `expectations/`), behind
`airflow/include/orchestration/pipeline.py`, imported by
the task that runs it (the dag-processor parses this file every few seconds).
"""

from __future__ import annotations

import cosmos  # noqa: F401  (import cosmos before cosmos.constants)
from airflow.sdk import dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode, TestBehavior
from cosmos.profiles import PostgresUserPasswordProfileMapping

from common import settings
from orchestration import assets, runs
from orchestration.dag_settings import dag_arguments
from orchestration.dbt_manifest import checked_manifest
from orchestration.planned_nodes import PLAN_TASK_ID, skip_unless_planned

DBT_PROFILE = ProfileConfig(
    profile_name="healthcare_warehouse",
    target_name="warehouse",
    profile_mapping=PostgresUserPasswordProfileMapping(
        conn_id="warehouse_transformer", profile_args={"schema": "build_blue"}
    ),
)


@dag(**dag_arguments("warehouse_build", __doc__, assets=assets.any_raw_data()))
def warehouse_build():
    # records and quarantines what breaks a check; the gate before publishing reads its verdict
    @task
    def validate_landed(dag_run=None) -> dict:
        from orchestration import pipeline

        return pipeline.validate_landed_batches(runs.pipeline_run_id(dag_run))

    @task
    def choose_build_schema() -> str:
        from orchestration import pipeline

        return pipeline.choose_build_schema()

    @task(task_id=PLAN_TASK_ID)
    def plan_build(build_schema: str, dag_run=None) -> dict:
        from orchestration import pipeline

        return pipeline.plan_build(build_schema, runs.pipeline_run_id(dag_run))

    # after the dbt tasks, which a plan may skip: runs unless one failed
    @task(trigger_rule="none_failed")
    def record_build(build_schema: str, dag_run=None) -> None:
        from orchestration import pipeline

        pipeline.record_build(build_schema, runs.pipeline_run_id(dag_run))

    @task(retries=0)
    def quality_gate(build_schema: str, dag_run=None) -> None:
        from orchestration import pipeline

        pipeline.quality_gate(build_schema, runs.pipeline_run_id(dag_run))

    @task
    def publish(build_schema: str, dag_run=None) -> list[str]:
        from orchestration import pipeline

        return pipeline.publish(build_schema, runs.pipeline_run_id(dag_run))

    build_schema = choose_build_schema()
    dbt_build = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            settings.DBT_PROJECT_DIR, manifest_path=checked_manifest(), project_name=None
        ),
        profile_config=DBT_PROFILE,
        execution_config=ExecutionConfig(dbt_executable_path=str(settings.VENV_BIN / "dbt")),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            # one task per model: `dbt build` of the model, its tests and unit tests
            test_behavior=TestBehavior.BUILD,
            # a test across two models (relationships) runs once both are built, in its own task
            should_detach_multiple_parents_tests=True,
        ),
        operator_args={
            "pre_execute": skip_unless_planned,
            "trigger_rule": "none_failed",
            "append_env": True,
            "env": {
                "DBT_BUILD_SCHEMA": "{{ ti.xcom_pull(task_ids='choose_build_schema') }}",
                "PIPELINE_RUN_ID": runs.TEMPLATE,
            },
        },
    )
    plan = plan_build(build_schema)
    validate_landed() >> build_schema >> plan >> dbt_build
    recorded = record_build(build_schema)
    gate = quality_gate(build_schema)
    dbt_build >> recorded >> gate >> publish(build_schema)


warehouse_build()
