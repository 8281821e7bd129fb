"""The environment Airflow's processes run with: its home, metadata database and connections.

Airflow's metadata lives in its own database (`airflow`) on the warehouse's server; its
connections to the warehouse are `AIRFLOW_CONN_*` variables made from warehouse.
"""

from __future__ import annotations

import os
import subprocess

from common import settings
from warehouse.connection import AIRFLOW_DATABASE, Warehouse

# Named people with roles (administrators, data engineers, viewers: orchestration/airflow_users.py),
# their passwords hashed in Airflow's database: the FAB auth manager, not the simple one, which
# Airflow documents as for development.
AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


DEFAULT_UI_PORT = 8080


def ui_url() -> str:
    """Where `make up` serves Airflow's UI (AIRFLOW_PORT, default 8080): the alert emails' links."""
    settings.load_env()
    return f"http://127.0.0.1:{os.environ.get('AIRFLOW_PORT', DEFAULT_UI_PORT)}"


# what the simple auth manager kept before the FAB one: the shared admin's password
_SIMPLE_AUTH_PASSWORDS = "simple_auth_manager_passwords.json"


def airflow_environment(warehouse: Warehouse) -> dict[str, str]:
    """`os.environ` plus everything Airflow, its tasks and Cosmos need."""
    (settings.AIRFLOW_HOME / _SIMPLE_AUTH_PASSWORDS).unlink(missing_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{settings.VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            # the project's packages, the orchestration glue's among them, also for an Airflow
            # run from outside the project's editable install
            "PYTHONPATH": os.pathsep.join(
                p
                for p in (
                    str(settings.PROJECT_ROOT),
                    str(settings.INCLUDE_DIR),
                    env.get("PYTHONPATH"),
                )
                if p
            ),
            "AIRFLOW_HOME": str(settings.AIRFLOW_HOME),
            "DLT_DATA_DIR": str(settings.DLT_DATA_DIR),
            # Tasks reach the warehouse through warehouse, never a second server.
            "WAREHOUSE_URL": warehouse.admin_url(),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # a DAG runs on its schedule once Airflow is up (`make up`), however it was first seen
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            # Cosmos would copy the dbt build's per-node results (error text included) into an Airflow
            # Variable for a retry of the producer, which the warehouse build never retries
            "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
            # Cosmos' cache of the parsed dbt project, in this warehouse's var folder (not /tmp,
            # shared by every Airflow on the machine)
            "AIRFLOW__COSMOS__CACHE_DIR": str(settings.VAR_DIR / "cosmos"),
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "AIRFLOW__CORE__FERNET_KEY": settings.require("AIRFLOW_FERNET_KEY"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": warehouse.url(
                "airflow", AIRFLOW_DATABASE, driver="postgresql+psycopg2"
            ),
            "AIRFLOW__API__SECRET_KEY": settings.require("AIRFLOW_API_SECRET_KEY"),
            "AIRFLOW__API__BASE_URL": ui_url(),
            "AIRFLOW__API_AUTH__JWT_SECRET": settings.require("AIRFLOW_JWT_SECRET"),
            "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.AIRFLOW_HOME / "logs"),
            "AIRFLOW_CONN_WAREHOUSE_TRANSFORMER": warehouse.airflow_connection("transformer"),
            "AIRFLOW_CONN_WAREHOUSE_LOADER": warehouse.airflow_connection("loader"),
        }
    )
    return env


def migrate_airflow_database(env: dict[str, str]) -> None:
    """`airflow db migrate` in Airflow's environment `env`: its metadata tables, the FAB auth
    manager's users among them."""
    done = subprocess.run(
        [_airflow_command(), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"airflow db migrate failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def exec_airflow_module(module: str, args: list[str], warehouse: Warehouse) -> None:
    """Replace this process with `python -m MODULE ARGS` in Airflow's environment, Airflow's own
    log lines warnings and above only."""
    python = str(settings.VENV_BIN / "python")
    env = {**airflow_environment(warehouse), "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
    os.execvpe(python, [python, "-m", module, *args], env)


def _airflow_command() -> str:
    airflow = settings.VENV_BIN / "airflow"
    return str(airflow) if airflow.exists() else "airflow"


def exec_airflow(args: list[str], warehouse: Warehouse) -> None:
    """Replace this process with `airflow ARGS` in Airflow's environment for `warehouse`."""
    command = _airflow_command()
    os.execvpe(command, [command, *args], airflow_environment(warehouse))
