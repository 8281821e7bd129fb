"""The credentials Airflow's tasks use, stored in Airflow's metadata database (encrypted with its
Fernet key), never in a process's environment: a connection per warehouse role a task works as
(`warehouse_loader`, `warehouse_transformer`, ...: orchestration.task_warehouse reads them) and a
variable per other secret a task uses (the research database's password, each configured FHIR
server's client secret, the SMTP password: common.settings.secret reads them).

`hcw up` and `hcw run` store them from `.env` each time they start, just after migrating Airflow's
database, in one Airflow process (prepare_airflow_database); the values reach it on its standard
input, never in its environment. Airflow lets any task read any stored connection or variable:
docs/runbook.md, "What a task holds", says what follows from that.
"""

from __future__ import annotations

import json
import subprocess
import sys

from common import settings
from orchestration.task_warehouse import CONNECTION_PREFIX, connection_id
from warehouse.connection import Warehouse

# the roles Airflow's tasks work as, each for its steps: landing, and the failure records
# (loader); dbt and the build plan (transformer); the gate's verdict and publishing
# (publisher); the quality report, the weekly summary and the processor's health (steward,
# analyst); the nightly dump (backup). Never the administrator, nor clinical operations, nor the
# vitals processor's `monitor`.
TASK_ROLES = ("loader", "transformer", "publisher", "steward", "analyst", "backup")
# the other secrets a task uses, beside each configured FHIR server's client secret
TASK_SECRETS = ("RESEARCH_DB_PASSWORD", "SMTP_PASSWORD")


def credentials(warehouse: Warehouse, env: dict[str, str]) -> dict[str, dict]:
    """What the tasks need, from `.env` and this process's environment: {"connections": {id:
    fields}, "variables": {name: value}}. The FHIR servers are those the tasks will see, in
    Airflow's environment `env`."""
    from ingestion.fhir_servers import configured_servers

    connections = {
        connection_id(role): {
            "conn_type": "postgres",
            "description": f"warehouse role {role} (stored by hcw up / hcw run from .env)",
            "host": warehouse.host,
            "port": warehouse.port,
            "schema": warehouse.database,
            "login": role,
            "password": warehouse.password(role),
        }
        for role in TASK_ROLES
    }
    settings.load_env()
    names = [
        *TASK_SECRETS,
        *(server.client_secret_variable for server in configured_servers(environ=env)),
    ]
    variables = {name: value for name in names if (value := settings.secret(name))}
    return {"connections": connections, "variables": variables}


def prepare_airflow_database(warehouse: Warehouse, env: dict[str, str]) -> None:
    """Migrate Airflow's database, then store the tasks' credentials in it: one Airflow start,
    in Airflow's environment `env`, the credentials on its standard input."""
    done = subprocess.run(
        [str(settings.VENV_BIN / "python"), "-m", "orchestration.stored_credentials"],
        input=json.dumps(credentials(warehouse, env)),
        env=env,
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            "preparing Airflow's database failed:\n" + done.stdout[-2000:] + done.stderr[-2000:]
        )


# what marks a variable as stored here, so that one no longer needed is deleted (a FHIR server
# taken out of the configuration, an SMTP password emptied)
STORED_BY = "stored by hcw from .env: orchestration/stored_credentials.py"


def _migrate_then_store(document: dict[str, dict]) -> None:
    from airflow.cli import cli_parser
    from airflow.models import Connection, Variable
    from airflow.utils.session import create_session

    args = cli_parser.get_parser().parse_args(["db", "migrate"])
    args.func(args)
    connections, variables = document["connections"], document["variables"]
    with create_session() as session:
        for stored in session.query(Connection).filter(
            Connection.conn_id.startswith(CONNECTION_PREFIX)
        ):
            if stored.conn_id not in connections:  # a role the tasks no longer work as
                session.delete(stored)
        for conn_id, fields in connections.items():
            stored = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
            if stored is None:
                stored = Connection(conn_id=conn_id)
                session.add(stored)
            for name, value in fields.items():
                setattr(stored, name, value)
        for stored in session.query(Variable).filter(Variable.description == STORED_BY):
            if stored.key not in variables:
                session.delete(stored)
        for name, value in variables.items():
            Variable.set(name, value, description=STORED_BY, session=session)
    print(f"stored {len(connections)} connections and {len(variables)} variables for the tasks")


if __name__ == "__main__":
    from common.process_exit import exit_without_collecting

    try:
        _migrate_then_store(json.loads(sys.stdin.read()))
    finally:
        exit_without_collecting()
