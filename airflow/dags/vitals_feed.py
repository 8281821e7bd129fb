"""Airflow DAG `vitals_feed`: land the device vitals micro-batches (NDJSON) waiting in their
landing folder. Every minute, and as soon as the landing watch sees a new batch; a run not done
within its deadline raises an alert.

The task emits the `raw_vitals` asset when it landed a batch, which starts the warehouse build.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from ingestion.orchestration import assets, landing_tasks
from ingestion.orchestration.dag_settings import dag_arguments


@dag(**dag_arguments("vitals_feed", __doc__))
def vitals_feed():
    @task(outlets=[assets.RAW["vitals"]])
    def land_vitals_files(dag_run=None) -> dict:
        return landing_tasks.land_new_files("vitals", dag_run)

    land_vitals_files()


vitals_feed()
