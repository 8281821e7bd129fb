"""The main pipeline DAG: land every source, validate what landed, build with dbt (rendered by
Cosmos), gate, publish.

Each run builds only what changed since the build schema's last complete build: `plan_build`
asks dbt, and every Cosmos task whose node the plan leaves out is skipped.

A thin wiring diagram: every step's logic lives in `ingestion/` and `expectations/`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import cosmos  # noqa: F401  (import cosmos before cosmos.constants)
from airflow.sdk import dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode
from cosmos.profiles import PostgresUserPasswordProfileMapping

from ingestion import pipeline, settings
from ingestion.planned_nodes import PLAN_TASK_ID, skip_unless_planned

DBT_PROFILE = ProfileConfig(
    profile_name="healthcare_warehouse",
    target_name="warehouse",
    profile_mapping=PostgresUserPasswordProfileMapping(
        conn_id="warehouse_transformer", profile_args={"schema": "build_blue"}
    ),
)


@dag(
    dag_id="healthcare_pipeline",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ingestion", "dbt", "publish"],
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
)
def healthcare_pipeline():
    @task
    def land_files(source: str, run_id=None) -> dict:
        return pipeline.land_files(source, run_id)

    @task
    def land_fhir_api(run_id=None) -> dict:
        return pipeline.land_fhir_api(run_id)

    @task
    def land_research_db(run_id=None) -> dict:
        return pipeline.land_research_db(run_id)

    # records and quarantines what breaks a check; the gate before publishing reads its verdict
    @task
    def validate_landed(run_id=None) -> dict:
        return pipeline.validate_landed_batches(run_id)

    @task
    def choose_build_schema() -> str:
        return pipeline.choose_build_schema()

    @task(task_id=PLAN_TASK_ID)
    def plan_build(build_schema: str, run_id=None) -> dict:
        return pipeline.plan_build(build_schema, run_id)

    # after the dbt tasks, which a plan may skip: runs unless one failed
    @task(trigger_rule="none_failed")
    def record_build(build_schema: str, run_id=None) -> None:
        pipeline.record_build(build_schema, run_id)

    @task(retries=0)
    def quality_gate(build_schema: str, run_id=None) -> None:
        pipeline.quality_gate(build_schema, run_id)

    @task
    def publish(build_schema: str, run_id=None) -> list[str]:
        return pipeline.publish(build_schema, run_id)

    landed = [
        land_files.override(task_id=f"land_{source}_files")(source)
        for source in pipeline.FILE_SOURCES
    ] + [land_fhir_api(), land_research_db()]
    build_schema = choose_build_schema()
    dbt_build = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(settings.DBT_PROJECT_DIR),
        profile_config=DBT_PROFILE,
        execution_config=ExecutionConfig(dbt_executable_path=str(settings.VENV_BIN / "dbt")),
        # a test across two models (relationships) runs once both are built, in its own task
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS, should_detach_multiple_parents_tests=True
        ),
        operator_args={
            "pre_execute": skip_unless_planned,
            "trigger_rule": "none_failed",
            "append_env": True,
            "env": {
                "DBT_BUILD_SCHEMA": "{{ ti.xcom_pull(task_ids='choose_build_schema') }}",
                "PIPELINE_RUN_ID": "{{ run_id }}",
            },
        },
    )
    plan = plan_build(build_schema)
    landed >> validate_landed() >> build_schema >> plan >> dbt_build
    recorded = record_build(build_schema)
    gate = quality_gate(build_schema)
    dbt_build >> recorded >> gate >> publish(build_schema)


healthcare_pipeline()
