"""Airflow DAG `research_db`: pull the clinical trials changed in the research database since the
last pull (incremental SQL). Daily.

The task emits the `raw_research` asset when it received anything, which starts the warehouse
build.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration import assets, landing_tasks
from orchestration.dag_settings import dag_arguments


@dag(**dag_arguments("research_db", __doc__))
def research_db():
    @task(outlets=[assets.RAW["research"]])
    def land_research_db(dag_run=None) -> dict:
        return landing_tasks.pull_research(dag_run)

    land_research_db()


research_db()
