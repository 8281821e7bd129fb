"""A throwaway warehouse: a fresh embedded PostgreSQL on a given or free port, set up as the
project's warehouse for as long as the context lasts. For tests and benchmarks, never for real data.

Setting one up from nothing (initdb, roles, migrations) takes seconds, and the first dbt build
on it also parses the project and loads the seeds (the 98k-row ICD-10-CM code set: about 3 s,
dbt_project/macros/load_csv_rows.sql). `prepare_template` does the migrations and the seeds
once into a folder and stops the server; `throwaway_warehouse(var_dir,
template=folder)` then starts a copy of that stopped server in under a second. The test suite
builds one template per session (tests/conftest.py) and hands it to the benchmarks it runs
through THROWAWAY_TEMPLATE_VARIABLE.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from common import settings
from common.env_file import GENERATED, with_derived
from warehouse import embedded
from warehouse.bootstrap import bootstrap
from warehouse.connection import Warehouse, dbt_environment, from_environment
from warehouse.dbt_runner import run_dbt

VAR_FOLDERS = {
    "VAR_DIR": "",
    "LANDING_DIR": "landing",
    "ARCHIVE_DIR": "archive",
    "QUARANTINE_DIR": "quarantine",
    "AIRFLOW_HOME": "airflow",
    "DLT_DATA_DIR": "dlt",
    "EMBEDDED_PGDATA": "pgdata",
    "BACKUP_DIR": "backups",
}

# Where a template keeps its stopped server and its secrets. dbt's parsed project is not kept:
# dbt parses again whenever the profile's connection (its port, its schema) differs, and no copy
# runs on the template's port (the tests carry dbt's saved parses from module to module on a
# worker's port instead: tests/conftest.py).
TEMPLATE_PGDATA = "pgdata"
TEMPLATE_SECRETS = "secrets.json"
# A template for the throwaway warehouses of a process that is given none (the benchmarks the
# test suite runs)
THROWAWAY_TEMPLATE_VARIABLE = "THROWAWAY_WAREHOUSE_TEMPLATE"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _fresh_secrets() -> dict[str, str]:
    """What `make setup` generates into `.env`, the superuser's password among them."""
    return with_derived({name: make() for name, make in GENERATED.items()})


def _chown_like(original: Path, copy: Path) -> None:
    """The copy owned as the original is: run as root, pgserver runs PostgreSQL as its own user,
    which must own the server's folder."""
    owner = original.stat()
    if copy.stat().st_uid == owner.st_uid:
        return
    for folder, _, files in os.walk(copy):
        for name in (folder, *(os.path.join(folder, file) for file in files)):
            os.chown(name, owner.st_uid, owner.st_gid, follow_symlinks=False)


def _copy_template(template: Path, var_dir: Path) -> dict[str, str]:
    """The template's stopped server copied to `var_dir/pgdata`; the template's secrets."""
    shutil.copytree(template / TEMPLATE_PGDATA, var_dir / "pgdata", symlinks=True)
    _chown_like(template / TEMPLATE_PGDATA, var_dir / "pgdata")
    return json.loads((template / TEMPLATE_SECRETS).read_text())


@contextmanager
def throwaway_warehouse(
    var_dir: Path, template: Path | None = None, port: int | None = None, archive_wal: bool = False
) -> Iterator[Warehouse]:
    """Start a server under `var_dir`, point the environment and `settings` at it, then undo.

    With a `template` (prepare_template's folder; by default the one THROWAWAY_TEMPLATE_VARIABLE
    names, if any), the server is a copy of the template's, with its roles, migrations and seeds.
    It listens on `port`, else on a free one.
    """
    template = template or (
        Path(os.environ[THROWAWAY_TEMPLATE_VARIABLE])
        if os.environ.get(THROWAWAY_TEMPLATE_VARIABLE)
        else None
    )
    var_dir.mkdir(parents=True, exist_ok=True)
    if template:
        values = _copy_template(template, var_dir)
        with _warehouse_in(var_dir, values, False, port, archive_wal) as warehouse:
            yield warehouse
    else:
        with _warehouse_in(var_dir, _fresh_secrets(), True, port, archive_wal) as warehouse:
            yield warehouse


@contextmanager
def _warehouse_in(
    var_dir: Path,
    values: dict[str, str],
    fresh: bool,
    port: int | None = None,
    archive_wal: bool = False,
) -> Iterator[Warehouse]:
    """The server of `var_dir/pgdata` (initdb'd and bootstrapped when `fresh`) started with the
    secrets `values`, and the environment and `settings` pointed at it until the context ends."""
    saved_env = dict(os.environ)
    saved_settings = {name: getattr(settings, name) for name in VAR_FOLDERS}
    pgdata = var_dir / "pgdata"
    port = port or free_port()
    embedded.ensure_running(pgdata, port, values["WAREHOUSE_ADMIN_PASSWORD"], archive_wal)
    try:
        os.environ.update(values)
        os.environ["WAREHOUSE_URL"] = (
            f"postgresql://postgres:{values['WAREHOUSE_ADMIN_PASSWORD']}@127.0.0.1:{port}/warehouse"
        )
        os.environ["WAREHOUSE_PORT"] = str(port)  # where a person's command looks for it
        os.environ["HEALTHCARE_VAR_DIR"] = str(var_dir)
        os.environ["DLT_DATA_DIR"] = str(var_dir / "dlt")
        os.environ["BACKUP_DIR"] = str(var_dir / "backups")
        for name, folder in VAR_FOLDERS.items():
            setattr(settings, name, var_dir / folder if folder else var_dir)
        warehouse = from_environment()
        if fresh:
            bootstrap(warehouse)
        yield warehouse
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        for name, value in saved_settings.items():
            setattr(settings, name, value)
        embedded.stop(pgdata)


def prepare_template(folder: Path) -> Path:
    """A stopped warehouse in `folder` to copy: roles, migrations and the seeds loaded by `dbt
    seed`, and the secrets it was made with (owner-only). It holds code sets only, no patient
    data. Returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    values = _fresh_secrets()
    secrets_file = folder / TEMPLATE_SECRETS
    secrets_file.touch(mode=0o600)
    secrets_file.write_text(json.dumps(values))
    with _warehouse_in(folder, values, fresh=True) as warehouse:
        seeded = run_dbt(
            ["seed"],
            {
                **os.environ,
                **dbt_environment(warehouse),
                "PIPELINE_RUN_ID": "template",
                "DBT_TARGET_PATH": str(folder / "dbt_target"),
                "DBT_LOG_PATH": str(folder / "dbt_logs"),
            },
        )
        if seeded.returncode != 0:
            raise RuntimeError(f"dbt seed of the template failed:\n{seeded.stdout[-3000:]}")
        # the template's own seeding is no pipeline run: nothing of it stays on record
        with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as conn:
            conn.execute("delete from audit.dbt_node_results where run_id = 'template'")
    return folder
