"""Airflow DAG `fhir_api`: pull what changed on each configured FHIR R4 server since its last pull
(ingestion/fhir_servers.yml; OAuth2, paged, rate-limited, incremental by `_lastUpdated`). Hourly.

A task per server (mapped over the configuration, named by the server's key in the UI), one after
the other: they share one dlt pipeline. Each emits the `raw_fhir` asset when it received anything,
which starts the warehouse build; one whose server had nothing new is skipped.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from orchestration import assets, landing_tasks
from orchestration.dag_settings import dag_arguments


@dag(**dag_arguments("fhir_api", __doc__))
def fhir_api():
    @task
    def fhir_servers() -> list[str]:
        from orchestration import pipeline

        keys = pipeline.fhir_servers()
        if not keys:
            raise AirflowSkipException(pipeline.NO_FHIR_SERVER)
        return keys

    @task(
        outlets=[assets.RAW["fhir"]],
        max_active_tis_per_dagrun=1,
        map_index_template="{{ fhir_server }}",
    )
    def land_fhir_server(server: str, dag_run=None) -> dict:
        get_current_context()["fhir_server"] = server  # the mapped task's name in the UI
        return landing_tasks.pull_fhir(dag_run, server)

    land_fhir_server.expand(server=fhir_servers())


fhir_api()
