"""Airflow DAG `ehr_batch`: land the EHR extracts (patient registry, then encounters) waiting in
their landing folders. Daily, and as soon as the landing watch sees a new extract.

Each task emits its `raw_*` asset when it landed a new file, which starts the warehouse build.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration import assets, landing_tasks
from orchestration.dag_settings import dag_arguments


@dag(**dag_arguments("ehr_batch", __doc__))
def ehr_batch():
    @task(outlets=[assets.RAW["ehr_patients"]])
    def land_ehr_patient_files(dag_run=None) -> dict:
        return landing_tasks.land_new_files("ehr_patients", dag_run)

    @task(outlets=[assets.RAW["ehr"]], trigger_rule="none_failed")
    def land_ehr_files(dag_run=None) -> dict:
        return landing_tasks.land_new_files("ehr", dag_run)

    # encounters name their patients: the registry lands first
    land_ehr_patient_files() >> land_ehr_files()


ehr_batch()
