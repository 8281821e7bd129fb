"""A pipeline run's id: the Airflow run's, prefixed with its DAG's (two DAGs' runs may share a run
id, `scheduled__<time>`), as every audit table records it.
"""

from __future__ import annotations

from typing import Any

SEPARATOR = "__"

# For operator fields Airflow renders (Cosmos' env): the same id as `pipeline_run_id`
TEMPLATE = "{{ dag.dag_id }}" + SEPARATOR + "{{ run_id }}"


def pipeline_run_id(dag_run: Any) -> str:
    return f"{dag_run.dag_id}{SEPARATOR}{dag_run.run_id}"


def workflow_of(run_id: str) -> str:
    """The DAG a pipeline run id belongs to."""
    return run_id.split(SEPARATOR, 1)[0]
