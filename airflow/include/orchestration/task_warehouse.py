"""The warehouse as an Airflow task reaches it: each role's password from that role's stored
Airflow connection (`warehouse_loader`, `warehouse_transformer`, ...), read when the task first
works as the role; never the administrator's, which no task has (orchestration/stored_credentials.py
stores the connections; docs/runbook.md, "What a task holds").

Where the warehouse is comes from the task's environment (WAREHOUSE_HOST, WAREHOUSE_PORT,
WAREHOUSE_DATABASE: orchestration.airflow_env), which holds no secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from common import settings
from warehouse.connection import (
    ROLE_PASSWORD_VARIABLES,
    NotTheirRole,
    Warehouse,
    for_service,
    from_environment,
)

CONNECTION_PREFIX = "warehouse_"


def connection_id(role: str) -> str:
    """The Airflow connection of warehouse role `role`."""
    return f"{CONNECTION_PREFIX}{role}"


@dataclass(frozen=True)
class TaskWarehouse(Warehouse):
    def password(self, role: str) -> str:
        if role not in ROLE_PASSWORD_VARIABLES:
            raise NotTheirRole(f"an Airflow task has no credentials for {role!r}")
        from airflow.sdk import Connection

        password = Connection.get(connection_id(role)).password
        if not password:
            raise RuntimeError(f"Airflow connection {connection_id(role)} has no password")
        return password

    def connect_kwargs(self, role: str, database: str | None = None) -> dict[str, object]:
        # the password is proven (SCRAM), never sent in clear to whatever answers on the port
        return {**super().connect_kwargs(role, database), "require_auth": "scram-sha-256"}


def task_warehouse() -> Warehouse:
    """The warehouse for the step running in this process: in Airflow (its services, `airflow
    dags test`), a TaskWarehouse; a step called outside Airflow (a benchmark, a test calling it
    directly) runs as its operator, with `.env` (warehouse.connection.from_environment)."""
    if not os.environ.get(settings.SECRETS_FROM_AIRFLOW):
        return from_environment()
    return for_service(TaskWarehouse)
