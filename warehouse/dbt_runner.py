"""Run dbt in the project's folder: as a command, its output captured (the manifest, the docs
site, a benchmark's build), in this process (the build plan's commands, the tests' builds:
`invoke_dbt`), or in place of this process (`hcw dbt ...`), with the connection filled in from
warehouse.connection.

Imports nothing heavy: the DAG files' manifest check runs it at parse time (dbt is imported by
the first `invoke_dbt`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from common import settings

# dbt's console levels: what a command line run would print (below them: debug)
SHOWN_LEVELS = ("info", "warn", "error")


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


def _module_calling_a_behaviour_flag() -> str:
    """What dbt_common's `BehaviorFlagRendered._default_source` returns (the module that called
    for the flag: the first frame up the stack outside dbt_common.behavior_flags), read from the
    frames' globals rather than from `inspect.stack()`."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__")
        if module and module != "dbt_common.behavior_flags":
            return module
        frame = frame.f_back
    return "Unknown"


def without_stack_inspection_per_adapter() -> None:
    """Every dbt command in a process builds its adapter's behaviour flags, and each flag names its
    source with `inspect.stack()` (dbt_common 1.39), which reads the source of every frame and,
    for a frame of code in no module (pytest's, Airflow's runners), searches all of sys.modules:
    under a test or an Airflow task, milliseconds to tens of them a flag (a test module of builds,
    tests/warehouse/test_build_plan.py, took 128 s with it, 112 s without). The same name, read
    from the frames' globals instead (tests/warehouse/test_dbt_runner.py compares the two). Once
    per process; dbt run as a command is left as it is."""
    from dbt_common.behavior_flags import BehaviorFlagRendered

    if not hasattr(BehaviorFlagRendered, "inspecting_the_stack"):
        BehaviorFlagRendered.inspecting_the_stack = BehaviorFlagRendered.__dict__["_default_source"]
        BehaviorFlagRendered._default_source = staticmethod(_module_calling_a_behaviour_flag)


@dataclass(frozen=True)
class DbtInvocation:
    """A dbt command run in this process, as its command line would have ended."""

    returncode: int  # 0 success, 1 a failure dbt reported (a stale source, a test), 2 an error
    stdout: str  # dbt's messages at the console's levels, one a line
    result: Any  # dbtRunner's result: the lines `dbt ls` lists, a freshness run's results


@contextmanager
def _environment_and_folder(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ is `env` and the working folder the dbt project's, until the context ends:
    dbt reads its flags and the profile's env_var() from the process's environment."""
    saved_env, saved_folder = dict(os.environ), os.getcwd()
    _change_environment(saved_env, env)
    os.chdir(settings.DBT_PROJECT_DIR)
    try:
        yield
    finally:
        os.chdir(saved_folder)
        _change_environment(dict(os.environ), saved_env)


def _change_environment(current: Mapping[str, str], wanted: Mapping[str, str]) -> None:
    """os.environ from `current` to `wanted`, touching only the variables that differ (the
    process's other threads never see it empty)."""
    for name in current.keys() - wanted.keys():
        del os.environ[name]
    for name, value in wanted.items():
        if current.get(name) != value:
            os.environ[name] = value


def invoke_dbt(
    args: list[str], env: Mapping[str, str], on_event: Callable[[Any], None] | None = None
) -> DbtInvocation:
    """`dbt ARGS` run in this process (dbt's programmatic dbtRunner) with `env`: no start-up of
    its own, which costs a dbt command about 3 s of a 4 s `dbt ls` on two cores. The build
    plan's commands and the tests' builds run so (the warehouse DAG's build runs in Cosmos'
    producer, through dbtRunner too). One at a time in a process: dbt reads os.environ, set here
    for its run.

    Nothing goes to this process's console: dbt's messages are returned, and its log file is
    written where DBT_LOG_PATH says, at dbt's info level unless DBT_LOG_LEVEL_FILE says otherwise
    (`debug` adds every statement dbt sends, and costs a build about a tenth of its time).
    `on_event` is given each of dbt's events (its EventMsg), as dbt's own callbacks are."""
    from dbt.cli.main import dbtRunner

    without_stack_inspection_per_adapter()
    messages: list[str] = []

    def keep(event: Any) -> None:
        if event.info.level in SHOWN_LEVELS and event.info.msg:
            messages.append(event.info.msg)

    # nothing on the console; the log file at info, unless `env` says otherwise
    quiet = {"DBT_LOG_LEVEL": "none", "DBT_LOG_LEVEL_FILE": env.get("DBT_LOG_LEVEL_FILE", "info")}
    with _environment_and_folder({**env, **quiet}):
        outcome = dbtRunner(callbacks=[keep, *([on_event] if on_event else [])]).invoke(list(args))
    if outcome.exception is not None:
        messages.append(f"{type(outcome.exception).__name__}: {outcome.exception}")
    returncode = 0 if outcome.success else (2 if outcome.exception is not None else 1)
    return DbtInvocation(returncode, "\n".join(messages), outcome.result)


def exec_dbt(args: list[str], warehouse) -> None:
    """Replace this process with `dbt ARGS` against `warehouse` (a warehouse.connection.Warehouse)."""
    from warehouse.connection import dbt_environment

    env = {**os.environ, **dbt_environment(warehouse)}
    dbt = dbt_executable()
    os.chdir(settings.DBT_PROJECT_DIR)
    os.execvpe(dbt, [dbt, *args], env)
