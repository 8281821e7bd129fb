"""A pipeline run's id for an Airflow run (warehouse.runs: `<dag_id>__<run_id>`), as every audit
table records it.
"""

from __future__ import annotations

from typing import Any

from warehouse.runs import SEPARATOR, run_id_of

# For operator fields Airflow renders (Cosmos' env): the same id as `pipeline_run_id`
TEMPLATE = "{{ dag.dag_id }}" + SEPARATOR + "{{ run_id }}"


def pipeline_run_id(dag_run: Any) -> str:
    return run_id_of(dag_run.dag_id, dag_run.run_id)
