"""The machine's CPU first for clinical alerting: the embedded server's processes that serve a
role with `cpu_nice` in warehouse/role_limits.yml (the analysts) run at that nice value, so that
analysts' long queries cannot starve the vitals processor and the server processes it uses
(Linux's scheduler gives a nice-19 process about 1/70 of the CPU a nice-0 one gets while both
want it). Each server process is a session of its own (PostgreSQL calls setsid), so where Linux
groups a session's processes for the scheduler (autogroups, on by default), a process's nice counts
only inside its group and each group shares alike: the group's nice (/proc/<pid>/autogroup) is
lowered as well. PostgreSQL has no CPU share per role; the vitals processor calls
`yield_the_cpu` every cycle, and a new analyst session or parallel worker is lowered within a
second.

Only the embedded server's own processes are touched: each pid PostgreSQL reports is checked to
be a child of the postmaster of `var/pgdata`. A server of WAREHOUSE_URL runs elsewhere, and its
operator gives analysts a replica or a resource group of their own (docs/runbook.md).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psutil
import psycopg

from warehouse.role_limits import read_limits

log = logging.getLogger(__name__)


def nice_by_role() -> dict[str, int]:
    return {
        role: settings["cpu_nice"]
        for role, settings in read_limits().items()
        if settings.get("cpu_nice")
    }


def _postmaster(pgdata: Path, conn: psycopg.Connection) -> int | None:
    """The embedded server's postmaster pid (postmaster.pid's first line), if it runs here and
    `conn` is connected to it: on this machine's loopback, at its port, served by its child."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (FileNotFoundError, IndexError, ValueError, PermissionError):
        return None
    if (
        conn.info.host not in ("127.0.0.1", "localhost", "::1", str(pgdata))
        or conn.info.port != port
    ):
        return None  # another server, which runs elsewhere
    try:
        if psutil.Process(conn.info.backend_pid).ppid() != pid:
            return None
    except psutil.NoSuchProcess:
        return None
    return pid


def _lower(pid: int, nice: int) -> bool:
    """`pid` and its scheduler group at `nice` at least; whether either was higher."""
    lowered = False
    if os.getpriority(os.PRIO_PROCESS, pid) < nice:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
        lowered = True
    autogroup = Path(f"/proc/{pid}/autogroup")  # "/autogroup-123 nice 0", where Linux has them
    if autogroup.exists() and int(autogroup.read_text().split()[-1]) < nice:
        autogroup.write_text(str(nice))
        lowered = True
    return lowered


def yield_the_cpu(conn: psycopg.Connection, pgdata: Path, nice: dict[str, int]) -> int:
    """Lower each of the embedded server's processes serving a role of `nice` to its value; how
    many were lowered now. Nothing when the server is not the embedded one at `pgdata`."""
    postmaster = _postmaster(pgdata, conn)
    if postmaster is None or not nice:
        return 0
    rows = conn.execute(
        "select pid, usename from pg_stat_activity where usename = any(%s)", (list(nice),)
    ).fetchall()
    lowered = 0
    for pid, role in rows:
        try:
            if psutil.Process(pid).ppid() != postmaster:
                continue  # not this server's
            lowered += _lower(pid, nice[role])
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue  # the session ended meanwhile
        except PermissionError:
            log.warning("cannot lower the priority of the server's %s processes here", role)
            return lowered
    return lowered
