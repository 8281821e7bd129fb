"""Airflow DAG `vitals_feed`: every minute, checks that the vitals processor is alive and keeping
up, and announces readings it landed since the last build.

The processor (monitoring/processor.py, started by `make up`) is the device feed's only
consumer: it lands each micro-batch within a second of its arrival and raises clinical alerts.
`check_vitals_processor` fails (and emails on-call) when the processor has written no heartbeat
for `processor_heartbeat_seconds`, a micro-batch has waited longer than
`processor_max_lag_seconds`, or a clinical alert's notification has been unsent longer than
`processor_max_unsent_seconds` (its channel is down); it is not retried, the next minute's run checks again.
`announce_landed_vitals` emits the `raw_vitals` asset, which starts the warehouse build, when
landed vitals wait for validation; it is skipped otherwise.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from orchestration import assets, landing_tasks
from orchestration.dag_settings import dag_arguments, dag_config

FEED = dag_config("vitals_feed")


@dag(**dag_arguments("vitals_feed", __doc__))
def vitals_feed():
    @task(retries=0)
    def check_vitals_processor() -> dict:
        return landing_tasks.check_vitals_processor(
            FEED["processor_heartbeat_seconds"],
            FEED["processor_max_lag_seconds"],
            FEED["processor_max_unsent_seconds"],
        )

    @task(outlets=[assets.RAW["vitals"]])
    def announce_landed_vitals() -> int:
        return landing_tasks.announce_landed_vitals()

    check_vitals_processor()
    announce_landed_vitals()


vitals_feed()
