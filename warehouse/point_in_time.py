"""Restore the embedded server to a moment (PostgreSQL's docs, "Recovering Using a Continuous
Archive Backup"): the newest base backup finished before it, replayed with the archived WAL up to
it, then promoted to a new timeline, which is archived as before.

hcw restore --to "2026-12-07 08:00:00+00"   # docs/runbook.md, "Backups and restore"

The data folder replaced is kept beside it (`pgdata.before-restore-<time>`: PHI, owner-only) for
whoever restores to delete once satisfied; a restore that fails puts it back. What was written
after the moment is gone from the warehouse: `hcw restore` then lets the next runs take it again
(ingestion/after_restore.py). Only the embedded server is restored this way; a server of your
own is restored by its administrator from the same backups (the runbook says how).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import tarfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from common import settings
from common.settings import SERVER_LOG_FOLDER
from common.whole_files import write_whole
from warehouse import embedded, wal_archive
from warehouse.backup import BASE, backups, record
from warehouse.backup_crypto import decrypted, identity
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

RESTORE_WAL = "restore_wal"  # in the new data folder, the archived WAL decrypted for the replay
RESTORE_SETTINGS = "restore.conf"
TIMELINES = "timelines.json"  # in the backup folder: the timelines restores opened, and when


class RestoreImpossible(RuntimeError):
    """No backup reaches the moment asked for, or the replay could not reach it."""


@dataclass(frozen=True)
class Restored:
    target: datetime
    backup: str
    wal_files: int
    replaced: Path  # the data folder as it was, kept aside
    seconds: float


def restore_to(
    target: datetime, warehouse: Warehouse, pgdata: Path, backup_dir: Path | None = None
) -> Restored:
    """Replace the embedded server at `pgdata` by its state at `target` (timezone-aware)."""
    if target.tzinfo is None:
        raise ValueError("the moment to restore to needs its time zone (e.g. +00)")
    started = time.monotonic()
    key = identity()  # before anything is stopped: no key or no backup, no restore
    backup = _backup_before(target, backup_dir)
    if embedded.is_running(pgdata):
        _archive_current_segment(warehouse)
        embedded.stop(pgdata)
    wal_archive.archive_spooled(wal_archive.spool_dir(pgdata), backup_dir)
    timeline = _timeline_live_at(target, record(backup)["checked"]["timeline"], backup_dir)
    owner = pgdata.stat()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    replaced = pgdata.with_name(f"{pgdata.name}.before-restore-{stamp}")
    pgdata.rename(replaced)
    try:
        pgdata.mkdir(mode=0o700)
        with (
            decrypted(backup / BASE, key) as stream,
            tarfile.open(fileobj=stream, mode="r|gz") as tar,
        ):
            tar.extractall(pgdata, filter="data")
        # the socket's lock file, which the server kept in its data folder: not this server's
        for stale in pgdata.glob(".s.PGSQL.*"):
            stale.unlink()
        start_segment = record(backup)["checked"]["start_segment"]
        wal_files = _decrypt_wal(key, start_segment, pgdata / RESTORE_WAL, backup_dir)
        _keep_access_log(replaced, pgdata)
        _write_recovery_settings(pgdata, target, timeline)
        for folder, _, files in os.walk(pgdata):
            for path in [folder, *(os.path.join(folder, name) for name in files)]:
                os.chown(path, owner.st_uid, owner.st_gid)
        embedded.start_recovering(pgdata, warehouse.port)
        _wait_until_promoted(warehouse, pgdata)
        _record_timeline(warehouse, backup_dir)
    except BaseException:
        _put_back(pgdata, replaced, stamp)
        raise
    (pgdata / RESTORE_SETTINGS).unlink()
    shutil.rmtree(pgdata / RESTORE_WAL)
    restored = Restored(target, backup.name, wal_files, replaced, time.monotonic() - started)
    log.info(
        "restored the server to %s from the backup %s and %d archived WAL files in %.0f s;"
        " the data folder it replaced is in %s: delete it once satisfied",
        target.isoformat(), backup.name, wal_files, restored.seconds, replaced,
    )  # fmt: skip
    return restored


def _archive_current_segment(warehouse: Warehouse, timeout_seconds: float = 60) -> None:
    """Finish the segment being written and wait until the server has spooled it: the changes
    up to this moment are then in the archive."""
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user), autocommit=True) as conn:
        # a commit stamped now: a replay stops at the first commit after its moment, and a
        # moment after the last change would otherwise find none (PostgreSQL then refuses)
        conn.execute("select pg_current_xact_id()")
        (segment,) = conn.execute("select pg_walfile_name(pg_switch_wal())").fetchone()
        until = time.monotonic() + timeout_seconds
        while time.monotonic() < until:
            archived, failed = conn.execute(
                "select last_archived_wal, last_failed_wal from pg_stat_archiver"
            ).fetchone()
            if archived and archived >= segment:
                return
            time.sleep(0.2)
    raise RestoreImpossible(f"the server did not archive {segment} (last failed: {failed})")


def _backup_before(target: datetime, backup_dir: Path | None) -> Path:
    candidates = [
        backup
        for backup in backups(backup_dir)
        if datetime.fromisoformat(record(backup)["finished_at"]) < target
    ]
    if not candidates:
        raise RestoreImpossible(
            f"no base backup finished before {target.isoformat()}: the oldest kept backup is the"
            " earliest moment a restore reaches"
        )
    return candidates[-1]


def _decrypt_wal(key, start_segment: str, folder: Path, backup_dir: Path | None) -> int:
    """Every archived WAL file from the backup's start on, and every timeline's history."""
    folder.mkdir(mode=0o700)
    first = wal_archive.segment_position(start_segment)
    count = 0
    for archived in wal_archive.archived_files(backup_dir):
        name = archived.name.removesuffix(wal_archive.ARCHIVED)
        if not (name.endswith(".history") or wal_archive.segment_position(name) >= first):
            continue
        with decrypted(archived, key) as stream, gzip.open(stream) as plain:
            (folder / name).write_bytes(plain.read())
        count += 1
    return count


def _timeline_live_at(target: datetime, backup_timeline: int, backup_dir: Path | None) -> int:
    """The timeline the server wrote at `target`: the newest a restore opened before it, else
    the backup's own. Each restore opens a timeline whose history reaches back through the
    ones before; replaying "the latest" would follow a later restore's branch past `target`."""
    opened = [
        entry["timeline"]
        for entry in _timelines(backup_dir)
        if datetime.fromisoformat(entry["opened_at"]) <= target
    ]
    return max([backup_timeline, *opened])


def _timelines(backup_dir: Path | None) -> list[dict]:
    path = (backup_dir or settings.BACKUP_DIR) / TIMELINES
    return json.loads(path.read_text()) if path.exists() else []


def _record_timeline(warehouse: Warehouse, backup_dir: Path | None) -> None:
    """The timeline this restore opened, and when: a later restore to a moment after this one
    replays along it, to a moment before along the one that was live then."""
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as conn:
        (timeline,) = conn.execute("select timeline_id from pg_control_checkpoint()").fetchone()
    entries = [*_timelines(backup_dir), {"timeline": timeline, "opened_at": _now().isoformat()}]
    write_whole((backup_dir or settings.BACKUP_DIR) / TIMELINES, json.dumps(entries, indent=2))


def _now() -> datetime:
    return datetime.now(UTC)


def _keep_access_log(replaced: Path, pgdata: Path) -> None:
    """The record of who connected and what analysts asked (warehouse/access_log.py), kept in
    the data folder, goes on whole: the restore takes back data, never the record of access."""
    old_log = replaced / SERVER_LOG_FOLDER
    if old_log.is_dir():
        shutil.copytree(old_log, pgdata / SERVER_LOG_FOLDER, dirs_exist_ok=True)


def _write_recovery_settings(pgdata: Path, target: datetime, timeline: int) -> None:
    (pgdata / "recovery.signal").touch()
    (pgdata / RESTORE_SETTINGS).write_text(
        "# Written by warehouse/point_in_time.py for one restore; deleted after it\n"
        f"restore_command = 'cp {pgdata / RESTORE_WAL}/%f %p'\n"
        f"recovery_target_time = '{target.isoformat()}'\n"
        f"recovery_target_timeline = '{timeline}'\n"
        "recovery_target_action = 'promote'\n"
    )
    conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{RESTORE_SETTINGS}'\n"
    if include not in conf.read_text():
        with conf.open("a") as handle:
            handle.write(include)


def _wait_until_promoted(
    warehouse: Warehouse, pgdata: Path, timeout_seconds: float = 3600, start_seconds: float = 60
) -> None:
    """Until the replay reached the moment and the server took writes again; a server that
    stopped meanwhile (the moment not reached: PostgreSQL refuses to go on) fails the restore."""
    started = time.monotonic()
    seen = False  # pg_ctl came back before the server wrote its pid file
    while time.monotonic() < started + timeout_seconds:
        running = (pgdata / "postmaster.pid").exists()
        seen = seen or running
        if (seen and not running) or (not seen and time.monotonic() > started + start_seconds):
            raise RestoreImpossible(
                "the server stopped while replaying: the log and server_log of the attempt, kept"
                " beside the data folder, say why (the moment may lie beyond the archived WAL)"
            )
        try:
            with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as conn:
                if not conn.execute("select pg_is_in_recovery()").fetchone()[0]:
                    return
        except psycopg.OperationalError:
            pass
        time.sleep(0.5)
    raise RestoreImpossible(f"the server still replays WAL after {timeout_seconds} s")


def _put_back(pgdata: Path, replaced: Path, stamp: str) -> None:
    """After a failed restore: the server as it was, the failed attempt kept for a look."""
    try:
        embedded.stop(pgdata)
    except Exception:  # it may never have started
        log.warning("the restored server did not stop cleanly", exc_info=True)
    if pgdata.exists():
        pgdata.rename(pgdata.with_name(f"{pgdata.name}.failed-restore-{stamp}"))
    replaced.rename(pgdata)
    log.error("the restore failed: the data folder is back as it was; the attempt is beside it")
