"""Airflow DAG `landing_watch`: starts a file source's DAG as soon as a new file is in its landing
folder, without waiting for that DAG's schedule.

Runs continuously: `wait_for_new_files` defers to the triggerer until a file nobody announced yet
has settled, then each `announce_<source>` task with new files emits its `landing_<source>` asset,
which the source's DAG (ehr_batch, claims_batch, vitals_feed) is scheduled on. A watch that sees
nothing new for `watch_timeout_minutes` is skipped and the next one begins.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from common import settings
from orchestration import assets
from orchestration.arrivals import LandingWatchSensor
from orchestration.dag_settings import dag_arguments, dag_config

WATCH = dag_config("landing_watch")


@dag(**dag_arguments("landing_watch", __doc__))
def landing_watch():
    new_files = LandingWatchSensor(
        task_id="wait_for_new_files",
        landing_dir=settings.LANDING_DIR,
        state_file=settings.AIRFLOW_HOME / "landing_watch" / "announced.json",
        poll_seconds=WATCH["poll_seconds"],
        settle_seconds=WATCH["settle_seconds"],
        watch_seconds=timedelta(minutes=WATCH["watch_timeout_minutes"]).total_seconds(),
    )
    for source, arrival in assets.ARRIVALS.items():

        @task(task_id=f"announce_{source}", outlets=[arrival])
        def announce(arrivals: dict, source: str = source) -> list[str]:
            if source not in arrivals:
                raise AirflowSkipException(f"no new {source} files")
            return arrivals[source]

        announce(new_files.output)


landing_watch()
