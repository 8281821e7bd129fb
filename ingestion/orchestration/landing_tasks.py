"""What a source DAG's landing task does around its pipeline step: nothing new, it is skipped, so
it emits no `raw_*` asset event and the warehouse build is not started for nothing.

DAG files import this module when they are parsed; the pipeline (dlt, psycopg) only when a task
runs.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from ingestion.orchestration.runs import pipeline_run_id


def land_new_files(source: str, dag_run: Any) -> dict[str, int]:
    from ingestion import pipeline

    counts = pipeline.land_files(source, pipeline_run_id(dag_run))
    if counts["files"] == counts["duplicates"]:
        raise AirflowSkipException(f"no new {source} files: {counts}")
    return counts


def pull_fhir(dag_run: Any) -> dict[str, int]:
    from ingestion import pipeline

    counts = pipeline.land_fhir_api(pipeline_run_id(dag_run))
    if not counts.get("received"):
        raise AirflowSkipException(f"nothing new from the FHIR API: {counts}")
    return counts


def pull_research(dag_run: Any) -> dict[str, int]:
    from ingestion import pipeline

    counts = pipeline.land_research_db(pipeline_run_id(dag_run))
    if not counts.get("received"):
        raise AirflowSkipException(f"nothing new in the research database: {counts}")
    return counts
