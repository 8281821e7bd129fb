"""Every DAG's settings, read from airflow/orchestration.yml: schedule, owner, tags, retries with
exponential backoff, timeouts, failure and recovery emails, deadlines. A DAG file passes
`dag_arguments(...)` to `@dag`.

Nothing here touches the warehouse: DAG files are parsed every few seconds by the dag-processor.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from common import settings
from orchestration import notifications

# ORCHESTRATION_CONFIG names another file of the same form (the tests' shorter retries and deadlines)
CONFIG_FILE = Path(
    os.environ.get("ORCHESTRATION_CONFIG", settings.PROJECT_ROOT / "airflow" / "orchestration.yml")
)
START_DATE = datetime(2024, 1, 1, tzinfo=UTC)
# Dates in Airflow's own log lines that are no patient's (warehouse.phi_scan.known_non_identifiers)
NON_IDENTIFIERS = (str(START_DATE),)


@cache
def _config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG_FILE.read_text())


def dag_config(dag_id: str) -> dict[str, Any]:
    """The DAG's own settings over the defaults."""
    config = _config()
    if dag_id not in config["dags"]:
        raise KeyError(f"{CONFIG_FILE.name}: no settings for DAG {dag_id}")
    return {**config["defaults"], **config["dags"][dag_id]}


def task_defaults(dag_id: str) -> dict[str, Any]:
    """default_args: every task retried with exponential backoff, stopped at its timeout."""
    config = dag_config(dag_id)
    return {
        "owner": config["owner"],
        "retries": config["retries"],
        "retry_delay": timedelta(seconds=config["retry_delay_seconds"]),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=config["max_retry_delay_seconds"]),
        "execution_timeout": timedelta(minutes=config["execution_timeout_minutes"]),
        "on_failure_callback": [notifications.task_failed],
        "on_success_callback": [notifications.task_succeeded],
        # a task that skips (nothing new to land) ran without error too
        "on_skipped_callback": [notifications.task_succeeded],
    }


def schedule_of(config: dict[str, Any], assets: Any = None) -> Any:
    """The configured cron; or that cron or an asset event: of `assets`, or of a new file in one
    of the configured `arrivals` landing folders."""
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    from orchestration.assets import ARRIVALS, any_of

    if assets is None and config.get("arrivals"):
        assets = any_of([ARRIVALS[source] for source in config["arrivals"]])
    if assets is None:
        return config["schedule"]
    return AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(config["schedule"], timezone="UTC"), assets=assets
    )


def _parsed_by_dags_test() -> bool:
    """Whether `airflow dags test` is parsing the DAG file in this process.

    Airflow 3.3.2's `dag.test()` cannot finish a run of a DAG with a deadline (its serialized copy
    holds the alerts where their ids belong: AttributeError in DagRun.update_state). A deadline is
    the scheduler's to evaluate, and `dags test` runs without one, so it is left out there.
    """
    return sys.argv[1:3] == ["dags", "test"]


def deadline_of(config: dict[str, Any]) -> Any:
    """The DAG run must be done `deadline_minutes` after it was queued, or an email goes out."""
    if "deadline_minutes" not in config or _parsed_by_dags_test():
        return None
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    within = timedelta(minutes=config["deadline_minutes"])
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=within,
        callback=AsyncCallback(notifications.deadline_missed, kwargs={"within": str(within)}),
        name="deadline",
    )


def dag_arguments(dag_id: str, doc_md: str | None, assets: Any = None) -> dict[str, Any]:
    """Keyword arguments for `@dag`; `assets`, events that start the DAG besides its cron."""
    config = dag_config(dag_id)
    return {
        "deadline": deadline_of(config),
        "dag_id": dag_id,
        "description": config["description"],
        "schedule": schedule_of(config, assets),
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "tags": config["tags"],
        "default_args": task_defaults(dag_id),
        "doc_md": doc_md,
    }
