"""Run dbt in the project's folder: captured (the build plan, the manifest, the docs site) or in
place of this process (`hcw dbt ...`), with the connection filled in from warehouse.connection.

Imports nothing heavy: the DAG files' manifest check runs it at parse time.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping

from common import settings


def dbt_executable() -> str:
    """The venv's dbt, or the one on PATH."""
    dbt = settings.VENV_BIN / "dbt"
    return str(dbt) if dbt.exists() else "dbt"


def run_dbt(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess:
    """`dbt ARGS` in the dbt project with `env`, its output captured."""
    return subprocess.run(
        [dbt_executable(), *args],
        cwd=settings.DBT_PROJECT_DIR,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )


def exec_dbt(args: list[str], warehouse) -> None:
    """Replace this process with `dbt ARGS` against `warehouse` (a warehouse.connection.Warehouse)."""
    from warehouse.connection import dbt_environment

    env = {**os.environ, **dbt_environment(warehouse)}
    dbt = dbt_executable()
    os.chdir(settings.DBT_PROJECT_DIR)
    os.execvpe(dbt, [dbt, *args], env)
