"""What every file source shares: ledger, validation, quarantine and landing through dlt.

For each new file in `landing/<source>/`: hash it, skip it if the ledger has it, read and validate
it, land the valid rows with dlt, quarantine the rest, record the file in the ledger and move it to
the archive. Received = loaded + quarantined holds for every file and is kept in the ledger.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg

from ingestion import ledger, settings
from ingestion.ledger import FileOutcome
from ingestion.quarantine import quarantine_rows
from ingestion.validation import RuleSet, validate
from ingestion.warehouse.connection import Warehouse

log = logging.getLogger(__name__)


class UnreadableFile(Exception):
    """The file as a whole cannot be read; the message is the reason, without any values."""


@dataclass(frozen=True)
class FileSource:
    name: str
    pattern: str
    dataset: str
    table: str
    rules: RuleSet
    read: Callable[[Path], pd.DataFrame]

    @property
    def landing_dir(self) -> Path:
        return settings.LANDING_DIR / self.name


@dataclass(frozen=True)
class PreparedFile:
    path: Path
    file_hash: str
    valid: pd.DataFrame
    rejected: pd.DataFrame
    rows_received: int


def _prepare(source: FileSource, path: Path, file_hash: str) -> PreparedFile:
    frame = source.read(path)
    frame.index = pd.RangeIndex(1, len(frame) + 1)  # record positions count from 1
    checked = validate(frame, source.rules)
    valid = checked.valid.astype(object)
    valid = valid.where(valid != "", None)
    valid["_source_file"] = path.name
    valid["_file_hash"] = file_hash
    valid["_record_position"] = valid.index.astype("int64")
    rejected = checked.rejected
    rejected["_position"] = rejected.index
    return PreparedFile(path, file_hash, valid, rejected, len(frame))


def _rows(prepared: list[PreparedFile]) -> Iterator[dict]:
    for item in prepared:
        yield from item.valid.to_dict("records")


def _pipeline(source: FileSource, warehouse: Warehouse):
    os.environ.setdefault("DLT_DATA_DIR", str(settings.DLT_DATA_DIR))
    import dlt

    return dlt.pipeline(
        pipeline_name=f"{source.name}_files",
        pipelines_dir=str(settings.DLT_DATA_DIR / "pipelines"),
        destination=dlt.destinations.postgres(credentials=warehouse.url("loader")),
        dataset_name=source.dataset,
        progress="log",
    )


def land(source: FileSource, warehouse: Warehouse, run_id: str) -> list[FileOutcome]:
    """Land every new file of `source`; return what happened to each file found."""
    paths = sorted(source.landing_dir.glob(source.pattern))
    outcomes: list[FileOutcome] = []
    prepared: list[PreparedFile] = []
    seen: set[str] = set()
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        for index, path in enumerate(paths, start=1):
            file_hash = ledger.content_hash(path)
            if file_hash in seen or ledger.already_recorded(conn, file_hash):
                log.info("%s: already landed (same content), archived without loading", path.name)
                ledger.move_aside(path, settings.ARCHIVE_DIR / source.name, file_hash)
                outcomes.append(FileOutcome(source.name, path.name, file_hash, "duplicate"))
                continue
            seen.add(file_hash)
            try:
                prepared.append(_prepare(source, path, file_hash))
            except UnreadableFile as error:
                reason = str(error)
                log.error("%s: file rejected: %s", path.name, reason)
                outcome = FileOutcome(source.name, path.name, file_hash, "rejected", reason=reason)
                ledger.record(conn, outcome, run_id)
                conn.commit()
                ledger.move_aside(
                    path, settings.REJECTED_FILES_DIR / source.name, file_hash, reason
                )
                outcomes.append(outcome)
            log.info("%s: read %d of %d files", source.name, index, len(paths))

        if not prepared:
            return outcomes

        rows_loaded = sum(len(item.valid) for item in prepared)
        log.info("%s: landing %d rows from %d files", source.name, rows_loaded, len(prepared))
        import dlt

        resource = dlt.resource(
            _rows(prepared),
            name=source.table,
            write_disposition="merge",
            primary_key=["_file_hash", "_record_position"],
        )
        _pipeline(source, warehouse).run(resource)

        for item in prepared:
            quarantined = quarantine_rows(
                conn, source.name, item.path.name, item.file_hash, item.rejected, run_id
            )
            outcome = FileOutcome(
                source.name,
                item.path.name,
                item.file_hash,
                "loaded",
                rows_received=item.rows_received,
                rows_loaded=len(item.valid),
                rows_quarantined=quarantined,
            )
            ledger.record(conn, outcome, run_id)
            conn.commit()
            ledger.move_aside(item.path, settings.ARCHIVE_DIR / source.name, item.file_hash)
            outcomes.append(outcome)
            log.info(
                "%s: received %d, loaded %d, quarantined %d",
                item.path.name,
                item.rows_received,
                len(item.valid),
                quarantined,
            )
    return outcomes
