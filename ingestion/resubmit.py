"""Re-submit a quarantined record, corrected: a steward's command.

    hcw quarantine show 42                 # the record as JSON, to correct
    hcw resubmit 42 corrected.json       # land the correction

The corrected record (a JSON object in the shape `show` prints) is written as a one-record file
in its source's own format into the source's landing folder, and the resubmission is recorded.
The next landing takes it like any file (ledger, rules, checks); `quarantine.quarantined_records`
then shows the original as reconciled, or as quarantined again if the correction breaks a rule.
Records of the API sources are corrected at their source system and pulled again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import psycopg

from common.whole_files import write_whole
from ingestion.file_source import FileSource
from ingestion.sources.registry import FILE_SOURCES
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)


class CannotResubmit(Exception):
    """The record cannot be re-submitted as a record (the message says why and what to do)."""


def quarantined_record(warehouse: Warehouse, record_id: int) -> tuple[str, dict[str, Any]]:
    """The source and the record of a quarantined record, as the steward reads them."""
    with psycopg.connect(**warehouse.connect_kwargs("steward")) as conn:
        row = conn.execute(
            "select source, record_position, record, status from quarantine.quarantined_records"
            " where record_id = %s",
            (record_id,),
        ).fetchone()
    if row is None:
        raise CannotResubmit(f"no quarantined record has id {record_id}")
    source, position, record, status = row
    if status != "waiting":
        raise CannotResubmit(f"record {record_id} is {status} already")
    if source not in FILE_SOURCES:
        raise CannotResubmit(
            f"record {record_id} came from the {source} API: correct it in the source system;"
            " the next pull takes the new version"
        )
    if position == 0:
        raise CannotResubmit(
            f"record {record_id} is a whole file that could not be read: correct the file and"
            f" drop it into the {source} landing folder again"
        )
    if "_raw_text" in record:
        raise CannotResubmit(
            f"record {record_id} could not be read as a record (its line is kept as text):"
            " correct the line in the file and drop the file into the landing folder again"
        )
    return source, {k: v for k, v in record.items() if not k.startswith("_")}


def _nested(record: dict[str, Any]) -> dict[str, Any]:
    """Undo the loader's flattening: `a__b` becomes {"a": {"b": ...}}."""
    nested: dict[str, Any] = {}
    for name, value in record.items():
        *parents, leaf = name.split("__")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return nested


def record_file(source: FileSource, record: dict[str, Any], name: str) -> tuple[str, bytes]:
    """`record` as a one-record file in `source`'s format: its name (after the source's file
    pattern) and content."""
    prefix, suffix = source.pattern.split("*")
    if suffix == ".csv":
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=list(record))
        writer.writeheader()
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
        content = text.getvalue()
    elif suffix == ".ndjson":
        content = json.dumps(_nested(record)) + "\n"
    else:
        content = json.dumps([_nested(record)], indent=2) + "\n"
    return f"{prefix}{name}{suffix}", content.encode("utf-8")


def resubmit(warehouse: Warehouse, record_id: int, corrected: dict[str, Any]) -> Path:
    """Land `corrected` in place of quarantined record `record_id`; return the file written.
    The resubmission is recorded and the file written together, or neither."""
    source_name, _ = quarantined_record(warehouse, record_id)
    source = FILE_SOURCES[source_name]
    name, content = record_file(source, corrected, f"resubmitted_{record_id}")
    path = source.landing_dir / name
    with psycopg.connect(**warehouse.connect_kwargs("steward")) as conn:
        try:
            conn.execute(
                "insert into quarantine.resubmissions (record_id, file_name, file_hash)"
                " values (%s, %s, %s)",
                (record_id, name, hashlib.sha256(content).hexdigest()),
            )
        except psycopg.errors.UniqueViolation:
            raise CannotResubmit(f"record {record_id} was re-submitted already") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, content)  # the landing watch sees it whole or not at all
    log.info("record %d re-submitted as %s", record_id, path)
    return path
