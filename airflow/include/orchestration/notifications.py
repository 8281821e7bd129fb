"""Email to the on-call team: a task failed (after its retries), a failed task recovered, a DAG run
missed its deadline. SMTP settings come from `.env` (SMTP_HOST, SMTP_PORT, SMTP_STARTTLS, SMTP_USER,
SMTP_PASSWORD, ALERT_EMAIL_FROM, ALERT_EMAIL_TO).

A message names the DAG, the task, the try and the link to its log, and the exception's type: never
its text, which may quote a record's values (email is no safe channel for PHI).
Failures are kept in `audit.task_failures` until the same task succeeds again: that success sends
the recovery email.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import quote

from common.mail import send_email

log = logging.getLogger(__name__)


def _task_lines(context: Any) -> list[str]:
    ti = context["ti"]
    return [
        f"DAG:     {ti.dag_id}",
        f"Task:    {ti.task_id}",
        f"Run:     {ti.run_id}",
        f"Try:     {ti.try_number}",
        f"Log:     {ti.log_url}",
    ]


def task_failed(context: Any) -> None:
    """on_failure_callback: the task failed on its last try."""
    ti = context["ti"]
    error = context.get("exception")
    lines = [
        f"{ti.dag_id}.{ti.task_id} failed on try {ti.try_number} (no retries left).",
        "",
        *_task_lines(context),
        f"Error:   {type(error).__name__ if error else 'unknown'} (its message is in the log)",
        "",
        "Rerun it from the Airflow UI once the cause is fixed: docs/runbook.md.",
    ]
    send_email(f"FAILED {ti.dag_id}.{ti.task_id} (try {ti.try_number})", "\n".join(lines))
    _record_failure(ti)


def task_succeeded(context: Any) -> None:
    """on_success_callback and on_skipped_callback: a recovery email when this task had failed."""
    ti = context["ti"]
    failed_runs = _close_failures(ti)
    if not failed_runs:
        return
    lines = [
        f"{ti.dag_id}.{ti.task_id} succeeded again, after failing in {', '.join(failed_runs)}.",
        "",
        *_task_lines(context),
    ]
    send_email(f"RECOVERED {ti.dag_id}.{ti.task_id}", "\n".join(lines))


async def deadline_missed(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """A deadline alert's callback (the triggerer runs it): the DAG run is not done in time.

    `context` holds the run as a dict (`dag_run`) and the deadline (`deadline`); `kwargs` what the
    DAG's DeadlineAlert passed (`within`, the interval it allowed).
    """
    import asyncio

    context = context or {}
    run, deadline = context.get("dag_run", {}), context.get("deadline", {})
    dag_id, run_id = run.get("dag_id", "?"), run.get("dag_run_id", "?")
    base_url = os.environ.get("AIRFLOW__API__BASE_URL", "http://localhost:8080").rstrip("/")
    lines = [
        (
            f"{dag_id} run {run_id} was not done by its deadline, {deadline.get('deadline_time')}"
            f" ({kwargs.get('within', '?')} after it was queued)."
        ),
        "",
        f"DAG:     {dag_id}",
        f"Run:     {run_id}",
        f"State:   {run.get('state')}",
        f"Queued:  {run.get('queued_at')}",
        f"Link:    {base_url}/dags/{dag_id}/runs/{quote(str(run_id), safe='')}",
        "",
        "What to check: docs/runbook.md (a run late or stuck).",
    ]
    await asyncio.to_thread(send_email, f"DEADLINE MISSED {dag_id}", "\n".join(lines))


_connection = None  # (its arguments, the connection)


def _execute(query: str, params: tuple) -> list[tuple]:
    """Run `query` as `loader` on a connection kept for this process's later callbacks (`airflow
    dags test` runs every task of a run in one process, about a hundred in the warehouse build);
    a connection that broke is made again once. psycopg is imported here: DAG files import this
    module."""
    import psycopg

    from orchestration.task_warehouse import task_warehouse

    global _connection
    kwargs = {**task_warehouse().connect_kwargs("loader"), "connect_timeout": 10}
    for attempt in (1, 2):
        if _connection is None or _connection[0] != kwargs or _connection[1].closed:
            _connection = (kwargs, psycopg.connect(**kwargs, autocommit=True))
        try:
            cursor = _connection[1].execute(query, params)
            return cursor.fetchall() if cursor.description else []
        except psycopg.OperationalError:
            _connection[1].close()
            _connection = None
            if attempt == 2:
                raise
    return []


def _record_failure(ti: Any) -> None:
    import psycopg

    try:
        _execute(
            "insert into audit.task_failures (dag_id, task_id, run_id, try_number)"
            " values (%s, %s, %s, %s)",
            (ti.dag_id, ti.task_id, ti.run_id, ti.try_number),
        )
    except psycopg.Error as error:
        log.error("could not record the failure of %s: %s", ti.task_id, type(error).__name__)


def _close_failures(ti: Any) -> list[str]:
    """Mark the task's open failures recovered; the runs they happened in."""
    import psycopg

    try:
        rows = _execute(
            """
            update audit.task_failures set recovered_at = now(), recovered_in = %s
            where dag_id = %s and task_id = %s and recovered_at is null
            returning run_id
            """,
            (ti.run_id, ti.dag_id, ti.task_id),
        )
    except psycopg.Error as error:
        log.error("could not read the failures of %s: %s", ti.task_id, type(error).__name__)
        return []
    return sorted({run_id for (run_id,) in rows})
