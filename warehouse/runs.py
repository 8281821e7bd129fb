"""A pipeline run: its id (`<workflow>__<run>`, the Airflow run's id prefixed with its DAG's, since
two DAGs' runs may share one, `scheduled__<time>`) and its row in `audit.pipeline_runs`, which
every audit table's `run_id` refers to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # DAG files import the run ids at parse time: no driver, no connection then
    from warehouse.connection import Warehouse

SEPARATOR = "__"


def run_id_of(workflow: str, run: str) -> str:
    return f"{workflow}{SEPARATOR}{run}"


def workflow_of(run_id: str) -> str:
    """The workflow (DAG) a pipeline run id belongs to."""
    return run_id.split(SEPARATOR, 1)[0]


def start_run(warehouse: Warehouse, run_id: str) -> None:
    """Record the pipeline run (once), with the workflow it belongs to."""
    import psycopg

    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        conn.execute(
            "insert into audit.pipeline_runs (run_id, workflow) values (%s, %s)"
            " on conflict do nothing",
            (run_id, workflow_of(run_id)),
        )
