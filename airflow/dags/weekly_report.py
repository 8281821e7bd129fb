"""Airflow DAG `weekly_report`: every Monday, build the data quality report and Great Expectations'
Data Docs, and email the week's summary (volumes, quarantine, gate decisions, readmission rate)
with the report attached.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration.dag_settings import dag_arguments


@dag(**dag_arguments("weekly_report", __doc__))
def weekly_report():
    @task
    def email_weekly_report() -> dict:
        from orchestration.weekly_report import send_weekly_report

        return send_weekly_report()

    email_weekly_report()


weekly_report()
