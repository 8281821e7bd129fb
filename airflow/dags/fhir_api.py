"""Airflow DAG `fhir_api`: pull what changed on the FHIR R4 API since the last pull (OAuth2,
paged, rate-limited, incremental by `_lastUpdated`). Hourly.

The task emits the `raw_fhir` asset when it received anything, which starts the warehouse build.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration import assets, landing_tasks
from orchestration.dag_settings import dag_arguments


@dag(**dag_arguments("fhir_api", __doc__))
def fhir_api():
    @task(outlets=[assets.RAW["fhir"]])
    def land_fhir_api(dag_run=None) -> dict:
        return landing_tasks.pull_fhir(dag_run)

    land_fhir_api()


fhir_api()
