"""Shared fixtures: a throwaway PostgreSQL per test module, wired in as the warehouse.

Each server is a real embedded PostgreSQL 18 on its worker's port, with a var folder of its own,
so no test touches the project's own warehouse, `.env` or `var/`. Each is a copy of one stopped
template warehouse, prepared once per test session (shared by pytest-xdist's workers): roles,
migrations and seeds in place, role passwords made for this session.

A worker's servers, one module after another, listen on one port of the worker's, and each module
starts with dbt's saved parses of the modules before it (partial_parse.msgpack, by their place in
the var folder): dbt's partial parsing, which a parse saved for another connection port would not
pass, carries over from module to module as it does from run to run in the product's var folder.
dbt checks a saved parse against the project's files, variables and profile before using it and
parses the project whole when anything differs.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from warehouse.connection import Warehouse, dbt_environment
from warehouse.dbt_runner import DbtInvocation, invoke_dbt
from warehouse.throwaway import prepare_template, throwaway_warehouse


@dataclass
class TestWarehouse:
    warehouse: Warehouse
    var_dir: Path

    @property
    def landing_dir(self) -> Path:
        return self.var_dir / "landing"

    def dbt_env(self, build_schema: str, run_id: str, target: str = "dbt_target") -> dict[str, str]:
        """dbt's environment on this warehouse; its manifest and compiled SQL go to
        var_dir/`target`, its log to var_dir/dbt_logs."""
        return {
            **os.environ,
            **dbt_environment(self.warehouse),
            "DBT_BUILD_SCHEMA": build_schema,
            "PIPELINE_RUN_ID": run_id,
            "DBT_TARGET_PATH": str(self.var_dir / target),
            "DBT_LOG_PATH": str(self.var_dir / "dbt_logs"),
        }

    def dbt(
        self, *args: str, build_schema: str, run_id: str, target: str = "dbt_target"
    ) -> DbtInvocation:
        """Run dbt on this warehouse, in this process (no dbt start-up each time)."""
        return invoke_dbt(list(args), self.dbt_env(build_schema, run_id, target))


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadfile`, longest units first (tests/scheduling.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.scheduling import longest_first_loadfile

    return longest_first_loadfile(config, log)


@pytest.fixture(scope="session")
def warehouse_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's stopped template warehouse (warehouse.throwaway.prepare_template): made by
    whichever worker asks first, while the others wait for it."""
    session_dir = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        session_dir = session_dir.parent  # the folder the workers' own folders share
    folder = session_dir / "warehouse_template"
    ready = session_dir / "warehouse_template.ready"
    with FileLock(session_dir / "warehouse_template.lock"):
        if not ready.exists():
            prepare_template(folder)
            ready.touch()
    return folder


# below the ports the system hands out (ip_local_port_range starts at 32768 by default)
WORKER_PORTS = 27400
SAVED_PARSE = "partial_parse.msgpack"


def _worker_port() -> int | None:
    """This worker's port for its servers, if no other process holds it (else a free one)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw99")
    port = WORKER_PORTS + int(worker.removeprefix("gw"))
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return None
    return port


def _copy_saved_parses(source: Path, destination: Path) -> None:
    for saved in source.rglob(SAVED_PARSE):
        if "pgdata" not in saved.parts:
            copy = destination / saved.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(saved, copy)


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked `last_in_module` runs after the other tests of its module, which stay in the
    session's order: it changes what they share (`make down`'s test stops the services the
    module's other tests use, each of which would start them again: about 30 s; the backup
    retention test deletes the backup the others read). Alone, or first, it still passes."""
    for item in [item for item in items if item.get_closest_marker("last_in_module")]:
        items.remove(item)
        module = [index for index, other in enumerate(items) if other.path == item.path]
        items.insert(module[-1] + 1 if module else len(items), item)


@pytest.fixture(scope="session")
def saved_parses(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dbt's saved parses of this worker's modules, by their place in a var folder."""
    folder = tmp_path_factory.getbasetemp() / "saved_parses"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def test_warehouse(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    warehouse_template: Path,
    saved_parses: Path,
) -> Iterator[TestWarehouse]:
    """A fresh server (a copy of the template) and var folder for one test module, set as the
    project's warehouse; it archives its WAL (warehouse/wal_archive.py) when the module says
    ARCHIVE_WAL = True, as the product's own server does."""
    var_dir = tmp_path_factory.mktemp("var")
    _copy_saved_parses(saved_parses, var_dir)
    archive_wal = getattr(request.module, "ARCHIVE_WAL", False)
    with throwaway_warehouse(
        var_dir, template=warehouse_template, port=_worker_port(), archive_wal=archive_wal
    ) as warehouse:
        yield TestWarehouse(warehouse, var_dir)
    _copy_saved_parses(var_dir, saved_parses)
