"""Airflow DAG `maintenance`: daily, delete archived landed files past their retention period and
back up the warehouse with pg_dump, keeping the newest backups (airflow/orchestration.yml).
"""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration.dag_settings import dag_arguments, dag_config

MAINTENANCE = dag_config("maintenance")


@dag(**dag_arguments("maintenance", __doc__))
def maintenance():
    @task
    def apply_archive_retention() -> dict:
        from orchestration import maintenance

        return maintenance.apply_archive_retention(MAINTENANCE["archive_retention_days"])

    @task
    def back_up_warehouse() -> str:
        from orchestration import maintenance

        return maintenance.back_up_warehouse(MAINTENANCE["backups_kept"])

    apply_archive_retention()
    back_up_warehouse()


maintenance()
