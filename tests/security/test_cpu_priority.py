"""Analysts' server processes yield the CPU to clinical alerting (warehouse/cpu_priority.py), on
the module's real embedded server: an analyst's backend, and its scheduler group, lowered to the
role's cpu_nice; the loader's left alone; nothing touched when the server is not the embedded
one. The latency it buys is benchmarks/monitoring.py --analyst-load's."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from warehouse import cpu_priority


def _backend(warehouse, role: str) -> tuple[psycopg.Connection, int]:
    conn = psycopg.connect(**warehouse.connect_kwargs(role), autocommit=True)
    return conn, conn.execute("select pg_backend_pid()").fetchone()[0]


def _group_nice(pid: int) -> int | None:
    autogroup = Path(f"/proc/{pid}/autogroup")
    return int(autogroup.read_text().split()[-1]) if autogroup.exists() else None


def test_the_analysts_backends_yield_and_the_loaders_do_not(test_warehouse):
    warehouse = test_warehouse.warehouse
    nice = cpu_priority.nice_by_role()
    assert nice == {"analyst": 19}
    analyst, analyst_pid = _backend(warehouse, "analyst")
    loader, loader_pid = _backend(warehouse, "loader")
    with analyst, loader, psycopg.connect(**warehouse.connect_kwargs("monitor")) as monitor:
        pgdata = test_warehouse.var_dir / "pgdata"
        assert cpu_priority.yield_the_cpu(monitor, pgdata, nice) == 1
        assert os.getpriority(os.PRIO_PROCESS, analyst_pid) == 19
        assert _group_nice(analyst_pid) in (19, None)  # None: a kernel without autogroups
        assert os.getpriority(os.PRIO_PROCESS, loader_pid) == 0
        assert _group_nice(loader_pid) in (0, None)
        monitor.commit()
        assert cpu_priority.yield_the_cpu(monitor, pgdata, nice) == 0  # lowered already


def test_nothing_is_touched_but_the_embedded_servers_own_processes(test_warehouse, tmp_path):
    warehouse = test_warehouse.warehouse
    analyst, analyst_pid = _backend(warehouse, "analyst")
    with analyst, psycopg.connect(**warehouse.connect_kwargs("monitor")) as monitor:
        # another server's folder (none runs there): its pids are not this machine's to touch
        assert cpu_priority.yield_the_cpu(monitor, tmp_path, {"analyst": 19}) == 0
        assert os.getpriority(os.PRIO_PROCESS, analyst_pid) == 0
