"""The file ledger: every landed file is recorded once, by the hash of its content.

A file dropped again (same content, any name) is recognised and not loaded twice. Landed files
move to the archive folder, unreadable ones to the rejected-files folder with a note of the reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class FileOutcome:
    source: str
    file_name: str
    file_hash: str
    status: str  # loaded | rejected | duplicate
    rows_received: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    new_columns: list[str] = field(default_factory=list)
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)  # rule -> records held
    code_sets: dict[str, str] = field(default_factory=dict)  # code set -> version checked against


def content_hash(path: Path) -> str:
    """The SHA-256 of a regular file's content (a link is not followed, a FIFO not waited on:
    ingestion.file_limits.open_regular)."""
    from ingestion.file_limits import open_regular

    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_key(file_hash: str) -> int:
    """The first 64 bits of the content hash as a signed bigint: the file's key in raw tables.

    Eight bytes a row instead of 64 characters; the ledger holds both, so a key maps back to its
    file (a collision between two files is a 1 in 2**64 chance per pair).
    """
    return int.from_bytes(bytes.fromhex(file_hash[:16]), "big", signed=True)


def already_recorded(conn: psycopg.Connection, file_hash: str) -> bool:
    row = conn.execute("select 1 from audit.file_ledger where file_hash = %s", (file_hash,))
    return row.fetchone() is not None


def record(conn: psycopg.Connection, outcome: FileOutcome, run_id: str) -> None:
    conn.execute(
        """
        insert into audit.file_ledger
            (file_hash, file_key, source, file_name, run_id, status,
             rows_received, rows_loaded, rows_quarantined, reason, new_columns, code_sets)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        on conflict (file_hash) do nothing
        """,
        (
            outcome.file_hash,
            file_key(outcome.file_hash),
            outcome.source,
            outcome.file_name,
            run_id,
            outcome.status,
            outcome.rows_received,
            outcome.rows_loaded,
            outcome.rows_quarantined,
            outcome.reason,
            outcome.new_columns,
            Jsonb(outcome.code_sets),
        ),
    )


def move_aside(path: Path, folder: Path, file_hash: str, reason: str | None = None) -> Path:
    """Move `path` into `folder`, keeping its name unless another file there already has it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        target = folder / f"{file_hash[:12]}_{path.name}"
    shutil.move(str(path), target)  # a link or a FIFO is moved itself, never what it names
    # archived now: retention counts from here (common/retention.py); a link's own time
    os.utime(target, follow_symlinks=False)
    if reason:
        target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
    return target
