"""Airflow DAG `maintenance`: daily, delete what is kept on disk only for a while (archived and
quarantined files, unfinished dlt packages, logs, validation results) past its retention, and
take a base backup of the server, encrypted and checked, keeping the newest with the WAL they
need (airflow/orchestration.yml; warehouse/backup.py).
"""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration.dag_settings import dag_arguments, dag_config

MAINTENANCE = dag_config("maintenance")


@dag(**dag_arguments("maintenance", __doc__))
def maintenance():
    @task
    def apply_retention() -> dict:
        from orchestration import maintenance

        return maintenance.apply_retention(MAINTENANCE["retention_days"])

    @task
    def back_up_warehouse() -> str:
        from orchestration import maintenance

        return maintenance.back_up_warehouse(MAINTENANCE["backups_kept"])

    apply_retention()
    back_up_warehouse()


maintenance()
