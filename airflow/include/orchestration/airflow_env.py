"""The environment Airflow's processes run with, which holds no secret, and their configuration
file, which holds Airflow's own (owner-only).

Airflow's metadata lives in its own database (`airflow`) on the warehouse's server. Its tasks
reach the warehouse with the credentials of their duty, stored in that database
(orchestration.stored_credentials), never with the administrator's.
"""

from __future__ import annotations

import os
from pathlib import Path

from common import settings
from common.env_file import holds_credentials, is_secret
from common.whole_files import written_whole
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
# Airflow's own secrets, only in its configuration file (owner-only), never in an environment:
# a task is a child of the scheduler and would inherit them. (section, option) -> the value's
# source, the metadata database's URL made from `.env`'s AIRFLOW_DB_PASSWORD
AIRFLOW_SECRETS = {
    ("core", "fernet_key"): "AIRFLOW_FERNET_KEY",
    ("api", "secret_key"): "AIRFLOW_API_SECRET_KEY",
    ("api_auth", "jwt_secret"): "AIRFLOW_JWT_SECRET",
}
# values that equal one of these secrets' are taken out of an environment too, whatever their
# name, but not short ones (a port, "false") which would match by chance
_SHORTEST_SECRET = 8


def config_file() -> Path:
    return settings.AIRFLOW_HOME / "airflow.cfg"


def _config_value(value: str) -> str:
    # Airflow's configuration parser expands `%(name)s`, `$NAME` and a leading `~` in its
    # file's values
    if "$" in value or "\n" in value or value.startswith("~"):
        raise SystemExit(
            "an Airflow secret holds '$', a line break or a leading '~', which its configuration"
            " would mangle: generate another (docs/runbook.md, rotate the generated secrets)"
        )
    return value.replace("%", "%%")


def write_airflow_config(warehouse: Warehouse) -> Path:
    """Airflow's configuration file, owner-only: its secrets and its metadata database's URL
    (everything else is in its environment, which holds no secret). Written whole under
    another name, then renamed: a service that starts meanwhile reads the old file or the new."""
    values = {key: settings.require(variable) for key, variable in AIRFLOW_SECRETS.items()}
    values["database", "sql_alchemy_conn"] = warehouse.url(
        "airflow", AIRFLOW_DATABASE, driver="postgresql+psycopg2"
    )
    sections: dict[str, list[str]] = {}
    for (section, option), value in values.items():
        sections.setdefault(section, []).append(f"{option} = {_config_value(value)}")
    text = "".join(f"[{name}]\n" + "\n".join(lines) + "\n\n" for name, lines in sections.items())
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(path, owner_only=True) as file:
        file.write(
            "# Written from .env by hcw at each start (orchestration/airflow_env.py): not edited"
            " here\n" + text
        )
    return path


def without_secrets(
    environ: dict[str, str], secret_names: set[str] = frozenset()
) -> dict[str, str]:
    """`environ` without any secret: none by name (common.env_file.is_secret, and
    `secret_names`), no URL with a password in it, and no value that holds a secret of `.env`
    or of `environ` itself, whatever its name."""
    secret_values = {
        value
        for name, value in [*environ.items(), *settings.env_file_values_all().items()]
        if (is_secret(name) or name in secret_names) and len(value) >= _SHORTEST_SECRET
    }
    return {
        name: value
        for name, value in environ.items()
        if not is_secret(name)
        and name not in secret_names
        and not holds_credentials(value)
        and not any(secret in value for secret in secret_values)
        and not name.startswith("PG")  # libpq's own (PGPASSWORD, PGPASSFILE, PGSERVICE...)
    }


def _secret_names() -> set[str]:
    """The secrets a task or a service reads under names of the operator's choosing (each FHIR
    server's client secret, in ingestion/fhir_servers.yml), and those this project names."""
    from ingestion.fhir_servers import client_secret_variables
    from orchestration.service_secrets import VITALS_PROCESSOR_SECRETS
    from orchestration.stored_credentials import TASK_SECRETS

    return {*client_secret_variables(), *TASK_SECRETS, *VITALS_PROCESSOR_SECRETS}


def airflow_environment(warehouse: Warehouse, write_config: bool = True) -> dict[str, str]:
    """The environment of Airflow's processes and so of every task: the settings they need and no
    secret. Airflow's own secrets go to its configuration file (write_airflow_config; one
    written before when not `write_config`); a task reads the credentials of its duty from
    Airflow (orchestration.stored_credentials)."""
    (settings.AIRFLOW_HOME / _SIMPLE_AUTH_PASSWORDS).unlink(missing_ok=True)
    if write_config:
        write_airflow_config(warehouse)
    elif not config_file().is_file():
        raise SystemExit(f"{config_file()} is missing: `hcw prepare-airflow` writes it")
    settings.load_env()
    env = without_secrets(dict(os.environ), _secret_names())
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
            "AIRFLOW_CONFIG": str(config_file()),
            "DLT_DATA_DIR": str(settings.DLT_DATA_DIR),
            # no `.env`: secrets come from Airflow's store (common.settings.secret)
            "HEALTHCARE_ENV_FILE": os.devnull,
            settings.SECRETS_FROM_AIRFLOW: "1",
            # where the warehouse is (orchestration.task_warehouse); its passwords are not here
            "WAREHOUSE_HOST": warehouse.host,
            "WAREHOUSE_PORT": str(warehouse.port),
            "WAREHOUSE_DATABASE": warehouse.database,
            **warehouse.transport.environment(),
            # Airflow retitles its processes (setproctitle), which by default overwrites each
            # one's /proc/<pid>/environ: kept, so that what a task holds can be read (ps e)
            "SPT_NOENV": "1",
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # a DAG runs on its schedule once Airflow is up (`make up`), however it was first seen
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            # Cosmos would copy the dbt build's per-node results (error text included) into an
            # Airflow Variable for a retry of the producer, which the warehouse build never retries
            "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
            # Cosmos' cache of the parsed dbt project, in this warehouse's var folder (not /tmp,
            # shared by every Airflow on the machine)
            "AIRFLOW__COSMOS__CACHE_DIR": str(settings.VAR_DIR / "cosmos"),
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "AIRFLOW__API__BASE_URL": ui_url(),
            "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.AIRFLOW_HOME / "logs"),
        }
    )
    return env


def exec_airflow_module(module: str, args: list[str], warehouse: Warehouse) -> None:
    """Replace this process with `python -m MODULE ARGS` in Airflow's environment, Airflow's own
    log lines warnings and above only."""
    python = str(settings.VENV_BIN / "python")
    env = {**airflow_environment(warehouse), "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
    os.execvpe(python, [python, "-m", module, *args], env)


def _airflow_command() -> str:
    airflow = settings.VENV_BIN / "airflow"
    return str(airflow) if airflow.exists() else "airflow"


def exec_airflow_service(service: str) -> None:
    """Replace this process with Airflow's `service`, with the configuration file written before
    and no administrator (warehouse.connection.for_service: where the warehouse is)."""
    from warehouse.connection import for_service

    command = _airflow_command()
    env = airflow_environment(for_service(), write_config=False)
    os.execvpe(command, [command, service], env)


def exec_airflow(args: list[str], warehouse: Warehouse) -> None:
    """Replace this process with `airflow ARGS` in Airflow's environment for `warehouse`."""
    command = _airflow_command()
    os.execvpe(command, [command, *args], airflow_environment(warehouse))
