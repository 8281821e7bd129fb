"""Continuous archiving of the warehouse's WAL (PostgreSQL's docs, "Continuous Archiving and
Point-in-Time Recovery"), encrypted, into the backup folder.

The server's `archive_command` only copies each finished segment into a spool beside its data
folder (`var/wal_spool`, its own user's, inside the PHI zone), synced, then renamed: the server's
user cannot run this project's Python and holds no key. The archiver moves what is spooled into
`<backup folder>/wal/` compressed and encrypted to the backup key's public half (it holds no
secret, no database credential), then deletes the spooled copy:

hcw archive-wal            # once: `make run`, every backup and every restore do it too
hcw archive-wal --watch    # every few seconds: a service of `make up` and of docker-compose

`archive_timeout_seconds` (warehouse/backups.yml) bounds what a lost data disk loses: a segment
is finished at least that often while anything is written.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import logging
import re
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from common import settings
from common.number_settings import read_whole_numbers
from common.whole_files import write_whole
from warehouse.backup_crypto import SUFFIX, encrypt_into, recipient

log = logging.getLogger(__name__)

SPOOL_NAME = "wal_spool"  # beside the server's data folder
ARCHIVED = ".gz" + SUFFIX
CHECKSUM = ".sha256"  # of the plain segment: a segment spooled twice is archived once
LOCK = ".archiver.lock"
BACKUPS_CONFIG = Path(__file__).with_name("backups.yml")
# a segment, a timeline's history, a backup's history file, or a timeline's last partial segment
ARCHIVABLE = re.compile(r"^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$|^[0-9A-F]{8}\.history$")


@dataclass(frozen=True)
class BackupSettings:
    archive_timeout_seconds: int


@cache
def backup_settings(path: Path = BACKUPS_CONFIG) -> BackupSettings:
    return read_whole_numbers(path, BackupSettings)


def spool_dir(pgdata: Path) -> Path:
    return pgdata.parent / SPOOL_NAME


def archive_dir(backup_dir: Path | None = None) -> Path:
    return (backup_dir or settings.BACKUP_DIR) / "wal"


def server_settings(pgdata: Path, archiving: bool = True) -> str:
    """The archiving lines of the embedded server's settings (warehouse/embedded.py); a
    throwaway server's (tests, benchmarks) archives nothing unless asked."""
    if not archiving:
        return "archive_mode = off\n"
    spool = spool_dir(pgdata)
    copy = f"cp %p {spool}/.%f.part && sync {spool}/.%f.part && mv -f {spool}/.%f.part {spool}/%f"
    return (
        "archive_mode = on\n"
        f"archive_command = '{copy}'\n"
        f"archive_timeout = {backup_settings().archive_timeout_seconds}\n"
    )


def archive_spooled(spool: Path, backup_dir: Path | None = None) -> int:
    """Move every finished file of `spool` into the archive, encrypted; how many. One archiver
    at a time (a lock in the spool): `make run`, a backup and the service may meet."""
    if not spool.is_dir():
        return 0
    target_dir = archive_dir(backup_dir)
    target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (spool / LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        moved = sum(_archive(spooled, target_dir) for spooled in sorted(spool.iterdir()))
    if moved:
        log.info("archived %d WAL files into %s", moved, target_dir)
    return moved


def _archive(spooled: Path, target_dir: Path) -> int:
    if not ARCHIVABLE.match(spooled.name):
        return 0  # a copy still being made (.name.part), the lock, or not the server's
    try:
        plain = spooled.read_bytes()
    except FileNotFoundError:  # archived meanwhile by another
        return 0
    digest = hashlib.sha256(plain).hexdigest()
    archived = target_dir / (spooled.name + ARCHIVED)
    checksum = target_dir / (spooled.name + CHECKSUM)
    if archived.exists() and checksum.exists():
        if checksum.read_text().strip() != digest:
            raise RuntimeError(
                f"{spooled.name} is archived already with other content: two servers archive"
                f" into {target_dir}, or one was restored over; left in {spooled.parent}"
            )
    else:
        encrypt_into(archived, io.BytesIO(gzip.compress(plain, compresslevel=1)), recipient())
        write_whole(checksum, digest + "\n")
    spooled.unlink(missing_ok=True)
    return 1


def watch(spool: Path, interval_seconds: float = 5.0) -> None:
    """archive_spooled every `interval_seconds`, until stopped."""
    log.info("archiving WAL from %s into %s", spool, archive_dir())
    while True:
        try:
            archive_spooled(spool)
        except Exception:  # logged, tried again: the nightly backup fails while WAL is not archived
            log.exception("archiving the spooled WAL failed; trying again")
        time.sleep(interval_seconds)


def segment_position(name: str) -> str:
    """A segment's place in the WAL whatever its timeline (pg_archivecleanup's comparison)."""
    return name[8:24]


def archived_files(backup_dir: Path | None = None) -> list[Path]:
    folder = archive_dir(backup_dir)
    return sorted(folder.glob("*" + ARCHIVED)) if folder.is_dir() else []


def main() -> None:
    """`python -m warehouse.wal_archive SPOOL`: archive what SPOOL holds every few seconds (the
    wal-archiver of docker-compose.yml, which has no embedded server of its own)."""
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    watch(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
