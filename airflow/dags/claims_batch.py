"""Airflow DAG `claims_batch`: land the insurance claims files (nested JSON) waiting in their
landing folder. Every four hours, and as soon as the landing watch sees a new file.

The task emits the `raw_claims` asset when it landed a new file, which starts the warehouse build.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration import assets, landing_tasks
from orchestration.dag_settings import dag_arguments


@dag(**dag_arguments("claims_batch", __doc__))
def claims_batch():
    @task(outlets=[assets.RAW["claims"]])
    def land_claims_files(dag_run=None) -> dict:
        return landing_tasks.land_new_files("claims", dag_run)

    land_claims_files()


claims_batch()
