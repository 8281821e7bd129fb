"""What a source DAG's landing task does around its pipeline step: nothing new, it is skipped, so
it emits no `raw_*` asset event and the warehouse build is not started for nothing.

DAG files import this module when they are parsed; the pipeline (dlt, psycopg) only when a task
runs.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from orchestration.runs import pipeline_run_id


def land_new_files(source: str, dag_run: Any) -> dict[str, int]:
    from orchestration import pipeline

    counts = pipeline.land_files(source, pipeline_run_id(dag_run))
    if counts["files"] == counts["duplicates"]:
        raise AirflowSkipException(f"no new {source} files: {counts}")
    return counts


def pull_fhir(dag_run: Any, server: str) -> dict[str, int]:
    from orchestration import pipeline

    counts = pipeline.land_fhir_server(pipeline_run_id(dag_run), server)
    if not counts.get("received"):
        raise AirflowSkipException(f"nothing new from FHIR server {server}: {counts}")
    return counts


def pull_research(dag_run: Any) -> dict[str, int]:
    from orchestration import pipeline

    counts = pipeline.land_research_db(pipeline_run_id(dag_run))
    if not counts.get("received"):
        raise AirflowSkipException(f"nothing new in the research database: {counts}")
    return counts


def check_vitals_processor(
    heartbeat_seconds: float, max_lag_seconds: float, max_unsent_seconds: float
) -> dict[str, Any]:
    from monitoring.health import check
    from orchestration.task_warehouse import task_warehouse

    health = check(task_warehouse(), heartbeat_seconds, max_lag_seconds, max_unsent_seconds)
    return {
        "heartbeat_age_seconds": round(health.heartbeat_age_seconds, 1),
        "files_waiting": health.files_waiting,
        "lag_seconds": round(health.lag_seconds, 1),
        "readings_per_second": round(health.readings_per_second, 1),
        "notifications_unsent": health.notifications_unsent,
    }


def announce_landed_vitals() -> int:
    """The vitals files landed and not validated yet (a build validates them); skipped if none."""
    import psycopg

    from orchestration.task_warehouse import task_warehouse

    warehouse = task_warehouse()
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        waiting = conn.execute(
            "select count(*) from audit.file_ledger"
            " where source = 'vitals' and status = 'loaded' and validation_state = 'pending'"
        ).fetchone()[0]
    if not waiting:
        raise AirflowSkipException("no newly landed vitals")
    return waiting
