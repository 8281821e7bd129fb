"""What every file source shares: ledger, validation, quarantine, reconciliation, landing with dlt.

For the new files in `landing/<source>/` (new by content hash: a file dropped again under any name
is archived without loading):

1. open each file; one that cannot be read as a whole goes to `quarantine/<source>/` with its reason;
2. forget any rows an interrupted earlier attempt left for these files, and dlt's pending packages;
3. stream each file in batches: validate (rules from `rules/<source>.yml`), hold a record that
   repeats an earlier one whole, or whose record key (if the rules name one) landed before, keep
   rejected records for quarantine, hand the valid ones to dlt as Arrow tables (parquet through
   ADBC);
4. per file, in one transaction: quarantine its rejected records, count its rows in the raw tables
   by file hash, check received = loaded + quarantined against an independent count of the file's
   records, and record it in the ledger; then move it to the archive.

A load killed at any moment leaves no ledger entry, so the next run lands the file again from
scratch: every record ends up in the raw tables exactly once, keyed by (file hash, position).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from common import settings
from ingestion import dlt_pipeline, file_limits, ledger
from ingestion.file_formats import FileUnreadable, Malformed, ParsedBatch
from ingestion.ledger import FileOutcome
from ingestion.quarantine import QuarantinedRecord, quarantine_records
from ingestion.validation import (
    Column,
    RuleSet,
    parse_timestamps,
    settle_ambiguous_local_times,
    to_number,
    validate,
)
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

MONEY = pa.decimal128(12, 2)


class ReconciliationError(Exception):
    """Received != loaded + quarantined for a file: nothing about it is recorded."""


class Reader(Protocol):
    columns: list[str]

    def batches(self) -> Iterator[ParsedBatch]: ...


@dataclass(frozen=True)
class FileSource:
    name: str
    pattern: str
    dataset: str
    table: str
    rules: RuleSet
    open: Callable[[Path, RuleSet], Reader]
    count_records: Callable[[Path], int]
    child_tables: dict[str, str] = field(default_factory=dict)  # child name -> table name
    reject_duplicates: bool = True

    @property
    def landing_dir(self) -> Path:
        return settings.LANDING_DIR / self.name

    @property
    def tables(self) -> list[str]:
        return [self.table, *self.child_tables.values()]


@dataclass
class FileLanding:
    """One file on its way in: what was read, loaded and set aside."""

    path: Path
    file_hash: str
    reader: Reader
    received: Future[int]  # the independent count, made on the side while the file loads
    rows_loaded: int = 0
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    new_columns: list[str] = field(default_factory=list)


# --- typing the valid rows ----------------------------------------------------------------------


def _typed_column(values: pa.Array, column: Column, time_zone: str) -> pa.Array:
    if column.type == "number":
        return to_number(values)
    if column.type == "money":
        return pc.cast(pc.round(to_number(values), 2), MONEY)
    if column.type == "integer":
        return pc.cast(to_number(values), pa.int64())
    if column.type == "date":
        parsed = pc.strptime(values, format="%Y-%m-%d", unit="s", error_is_null=True)
        return pc.cast(parsed, pa.date32())
    if column.type == "timestamp":
        return parse_timestamps(values, time_zone)
    return values


def _arrow_type(column: Column) -> pa.DataType:
    return {
        "number": pa.float64(),
        "money": MONEY,
        "integer": pa.int64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }.get(column.type, pa.string())


def _typed(table: pa.Table, columns: list[Column], time_zone: str) -> pa.Table:
    """Configured columns typed (missing ones as nulls); unexpected columns stay text."""
    configured = {column.name for column in columns}
    arrays, names = [], []
    for column in columns:
        if column.name in table.column_names:
            values = table.column(column.name).combine_chunks()
            arrays.append(_typed_column(values, column, time_zone))
        else:
            arrays.append(pa.nulls(table.num_rows, _arrow_type(column)))
        names.append(column.name)
    for name in table.column_names:
        if name not in configured and not name.startswith("_"):
            arrays.append(table.column(name))
            names.append(name)
    return pa.table(arrays, names=names)


def _with_key(table: pa.Table, file_hash: str, positions: np.ndarray) -> pa.Table:
    """The natural key: the file (by its content hash's key) and the record's position in it."""
    file_keys = np.full(table.num_rows, ledger.file_key(file_hash), dtype=np.int64)
    return table.append_column("_file_key", pa.array(file_keys)).append_column(
        "_record_position", pa.array(positions, pa.int64())
    )


# --- validation of one batch --------------------------------------------------------------------


def _duplicates(records: pa.Table, candidates: np.ndarray, prefilter: list[str]) -> dict[int, int]:
    """Row index -> row index of its first occurrence, for rows that repeat an earlier one whole.

    Rows can only repeat each other if their `prefilter` columns do, so the whole-row comparison
    runs only on the few rows whose prefilter key repeats.
    """
    if records.num_rows == 0 or not candidates.any():
        return {}
    rows = pa.array(np.arange(records.num_rows, dtype=np.int64))
    keyed = records.select(prefilter or records.column_names).append_column("_row", rows)
    keyed = keyed.filter(pa.array(candidates))
    counts = keyed.group_by(keyed.column_names[:-1], use_threads=False).aggregate(
        [("_row", "count")]
    )
    repeated = counts.filter(pc.greater(counts.column("_row_count"), 1))
    if repeated.num_rows == 0:
        return {}
    suspects = keyed.join(repeated, keys=keyed.column_names[:-1], join_type="inner")
    suspect_rows = np.sort(suspects.column("_row").to_numpy())
    whole = records.take(pa.array(suspect_rows)).to_pylist()
    first_of: dict[tuple, int] = {}
    repeats: dict[int, int] = {}
    for row, values in zip(suspect_rows.tolist(), whole, strict=True):
        key = tuple(values.values())
        if key in first_of:
            repeats[row] = first_of[key]
        else:
            first_of[key] = row
    return repeats


ARRAY_TYPES = {
    "text": "text[]",
    "number": "float8[]",
    "money": "numeric[]",
    "integer": "int8[]",
    "date": "date[]",
    "timestamp": "timestamptz[]",
}


class RecordKeys:
    """The record key (RuleSet.record_key) of every record landed: those of this landing, kept
    here, and those landed before, looked up in the raw table (by its index on the key, the first
    column the one a batch's records lie close together in, such as a reading's time)."""

    def __init__(self, conn: psycopg.Connection, source: FileSource) -> None:
        self.conn = conn
        self.source = source
        self.columns = [
            next(c for c in source.rules.columns if c.name == name)
            for name in source.rules.record_key
        ]
        self.seen: dict[tuple, tuple[str, int]] = {}  # key -> (file, position) in this landing
        self.table_exists = source.table in _existing_tables(conn, source)

    def repeats(self, file_name: str, batch: ParsedBatch, candidates: np.ndarray) -> dict[int, str]:
        """Row -> reason, for the `candidates` rows whose key landed before or earlier here."""
        rows = np.flatnonzero(candidates)
        if not len(rows):
            return {}
        picked = pa.array(rows)
        typed = [
            _typed_column(
                batch.records.column(column.name).combine_chunks().take(picked),
                column,
                self.source.rules.time_zone,
            )
            for column in self.columns
        ]
        keys = list(zip(*(values.to_pylist() for values in typed), strict=True))
        landed_before = self._in_raw_table(typed)
        names = ", ".join(column.name for column in self.columns)
        reasons = {}
        for row, key in zip(rows.tolist(), keys, strict=True):
            if None in key:
                continue
            if key in self.seen:
                earlier_file, position = self.seen[key]
                where = "this file" if earlier_file == file_name else earlier_file
                reasons[row] = (
                    f"record_key_not_repeated: its {names} repeat record {position} of {where}"
                )
            elif key in landed_before:
                reasons[row] = f"record_key_not_repeated: its {names} were landed before"
            else:
                self.seen[key] = (file_name, int(batch.positions[row]))
        return reasons

    def _in_raw_table(self, typed: list[pa.Array]) -> set[tuple]:
        """The keys among `typed` that the raw table holds: its rows between the first key
        column's least and greatest value here (a reading's time) whose other key columns hold one
        of the values here, through the index on the key. A new micro-batch finds none."""
        if not self.table_exists:
            return set()
        bounds = pc.min_max(typed[0])
        if not bounds["min"].is_valid:
            return set()
        first, *others = self.columns
        conditions = [
            sql.SQL("{} between %s and %s").format(sql.Identifier("raw", first.name)),
            *(
                sql.SQL("{} = any(%s::" + ARRAY_TYPES[column.type] + ")").format(
                    sql.Identifier("raw", column.name)
                )
                for column in others
            ),
        ]
        # rows of landed files only: not those an interrupted attempt left behind
        conditions.append(
            sql.SQL(
                "exists (select 1 from audit.file_ledger as ledger"
                " where ledger.file_key = raw._file_key and ledger.status = 'loaded')"
            )
        )
        query = sql.SQL("select {} from {} as raw where {}").format(
            sql.SQL(", ").join(sql.Identifier("raw", column.name) for column in self.columns),
            sql.Identifier(self.source.dataset, self.source.table),
            sql.SQL(" and ").join(conditions),
        )
        params = [
            bounds["min"].as_py(),
            bounds["max"].as_py(),
            *(pc.unique(values).to_pylist() for values in typed[1:]),
        ]
        rows = self.conn.execute(query, params).fetchall()
        self.conn.commit()
        return set(rows)


def _record_of(batch: ParsedBatch, row: int, children: list[str]) -> dict[str, Any]:
    record = batch.records.slice(row, 1).to_pylist()[0]
    position = int(batch.positions[row])
    for name in children:
        child = batch.children.get(name)
        if child is None:
            continue
        lines = child.filter(pc.equal(child.column("_parent_position"), position))
        record[name] = [
            {k: v for k, v in line.items() if not k.startswith("_")} for line in lines.to_pylist()
        ]
    return record


def _split(
    source: FileSource, landing: FileLanding, batch: ParsedBatch, keys: RecordKeys | None
) -> Iterator[Any]:
    """Quarantine what breaks a rule; yield the valid records (and child rows) as Arrow tables."""
    import dlt

    for malformed in batch.malformed:
        landing.quarantined.append(_from_malformed(malformed))
    verdict = validate(batch.records, source.rules, batch.positions, batch.children)
    failed = verdict.failed.copy()
    reasons = dict(verdict.reasons)
    rules_of = {row: verdict.first_rule[row] for row in np.flatnonzero(failed).tolist()}
    if source.reject_duplicates:
        prefilter = source.rules.duplicate_prefilter
        for row, first in _duplicates(batch.records, ~failed, prefilter).items():
            failed[row] = True
            rules_of[row] = "record_not_repeated"
            reasons[row] = [f"record_not_repeated: repeats record {int(batch.positions[first])}"]
    if keys is not None:
        for row, reason in keys.repeats(landing.path.name, batch, ~failed).items():
            failed[row] = True
            rules_of[row] = "record_key_not_repeated"
            reasons[row] = [reason]
    for row in np.flatnonzero(failed).tolist():
        landing.quarantined.append(
            QuarantinedRecord(
                position=int(batch.positions[row]),
                rule=rules_of[row],
                reason="; ".join(reasons[row]),
                record=_record_of(batch, row, list(source.child_tables)),
            )
        )
    keep = ~failed
    if not keep.any():
        return
    valid_positions = batch.positions[keep]
    records = _typed(
        batch.records.filter(pa.array(keep)), source.rules.columns, source.rules.time_zone
    )
    landing.rows_loaded += records.num_rows
    yield dlt.mark.with_table_name(
        _with_key(records, landing.file_hash, valid_positions), source.table
    )
    for child_name, table_name in source.child_tables.items():
        child = batch.children.get(child_name)
        if child is None or child.num_rows == 0:
            continue
        kept = child.filter(pc.is_in(child.column("_parent_position"), pa.array(valid_positions)))
        typed = _typed(kept, source.rules.children[child_name], source.rules.time_zone)
        typed = _with_key(typed, landing.file_hash, kept.column("_parent_position").to_numpy())
        typed = typed.append_column("_line_number", kept.column("_line"))
        yield dlt.mark.with_table_name(typed, table_name)


def _from_malformed(malformed: Malformed) -> QuarantinedRecord:
    return QuarantinedRecord(
        position=malformed.position,
        rule=malformed.rule,
        reason=f"{malformed.rule}: {malformed.reason}",
        record={"_raw_text": malformed.text},
    )


def _rows(
    source: FileSource, landings: list[FileLanding], keys: RecordKeys | None
) -> Iterator[Any]:
    for number, landing in enumerate(landings, start=1):
        configured = set(source.rules.column_names())
        landing.new_columns = [c for c in landing.reader.columns if c not in configured]
        for column in landing.new_columns:
            log.warning(
                "%s: new column %s lands as text (not in the rules)", landing.path.name, column
            )
        for batch in landing.reader.batches():
            batch = replace(
                batch, records=settle_ambiguous_local_times(batch.records, source.rules)
            )
            yield from _split(source, landing, batch, keys)
            log.info(
                "%s (%d/%d): %d rows valid, %d quarantined so far",
                landing.path.name,
                number,
                len(landings),
                landing.rows_loaded,
                len(landing.quarantined),
            )


# --- the steps around dlt -----------------------------------------------------------------------


def _existing_tables(conn: psycopg.Connection, source: FileSource) -> list[str]:
    return [
        table
        for table in source.tables
        if conn.execute("select to_regclass(%s)", (f"{source.dataset}.{table}",)).fetchone()[0]
    ]


def forget_partial_load(source: FileSource, warehouse: Warehouse, file_hash: str) -> None:
    """Remove the rows a failed attempt left for a file that is not in the ledger (one set
    aside rather than landed)."""
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        if not ledger.already_recorded(conn, file_hash):
            _forget_partial_loads(conn, source, [file_hash])


def _forget_partial_loads(conn: psycopg.Connection, source: FileSource, hashes: list[str]) -> None:
    """Rows an interrupted attempt left for files that are not in the ledger."""
    for table in _existing_tables(conn, source):
        deleted = conn.execute(
            sql.SQL("delete from {} where _file_key = any(%s)").format(
                sql.Identifier(source.dataset, table)
            ),
            ([ledger.file_key(file_hash) for file_hash in hashes],),
        ).rowcount
        if deleted:
            log.warning(
                "%s.%s: removed %d rows of an interrupted load", source.dataset, table, deleted
            )


def _ensure_key_indexes(conn: psycopg.Connection, source: FileSource) -> None:
    """Index the file key of every raw table: reconciliation and retries look rows up by file.

    A file's rows are appended together, so each block range holds few file keys: a BRIN index
    (minmax-multi) finds them at a fraction of a B-tree's cost to maintain while loading. New
    ranges are summarized by autovacuum; until then queries simply read them.
    """
    if source.rules.record_key and source.table in _existing_tables(conn, source):
        # the record key's lookups (RecordKeys) while landing
        conn.execute(
            sql.SQL("create index if not exists {} on {} ({})").format(
                sql.Identifier(f"{source.table}_record_key"),
                sql.Identifier(source.dataset, source.table),
                sql.SQL(", ").join(map(sql.Identifier, source.rules.record_key)),
            )
        )
    for table in _existing_tables(conn, source):
        index = sql.Identifier(f"{table}_file_key")
        conn.execute(
            sql.SQL(
                "create index if not exists {} on {} using brin (_file_key int8_minmax_multi_ops)"
                " with (autosummarize = on)"
            ).format(index, sql.Identifier(source.dataset, table))
        )
    conn.commit()


def _loaded_count(conn: psycopg.Connection, source: FileSource, file_hash: str) -> int:
    if source.table not in _existing_tables(conn, source):
        return 0
    query = sql.SQL("select count(*) from {} where _file_key = %s").format(
        sql.Identifier(source.dataset, source.table)
    )
    return conn.execute(query, (ledger.file_key(file_hash),)).fetchone()[0]


def _refuse_not_a_file(
    conn: psycopg.Connection, source: FileSource, path: Path, kind: str, run_id: str
) -> FileOutcome:
    """Quarantine what is in a landing folder but is no regular file (a link, a FIFO, a device):
    moved aside itself, never opened nor followed, and recorded under a key of its name and
    inode (it has no content of its own to hash)."""
    status = os.lstat(path)
    identity = f"{source.name}\0{path.name}\0{status.st_ino}\0{status.st_mtime_ns}"
    key = hashlib.sha256(f"not a regular file\0{identity}".encode()).hexdigest()
    reason = f"regular_file: {kind}, not a regular file: not read"
    log.error("%s: %s: quarantined", path.name, reason)
    target = ledger.move_aside(path, settings.QUARANTINE_DIR / source.name, key, reason)
    outcome = FileOutcome(source.name, path.name, key, "rejected", reason=reason)
    quarantine_records(
        conn,
        source.name,
        path.name,
        key,
        [QuarantinedRecord(0, "regular_file", reason, {"_quarantined_file": str(target)})],
        run_id,
    )
    ledger.record(conn, outcome, run_id)
    conn.commit()
    return outcome


def _reject_file(
    conn: psycopg.Connection,
    source: FileSource,
    path: Path,
    file_hash: str,
    error: FileUnreadable,
    run_id: str,
) -> FileOutcome:
    try:
        # what could not be opened within its limits is not read whole to be counted either
        received = 0 if error.rule in ("file_size", "line_size") else source.count_records(path)
    except (OSError, ValueError, RecursionError, csv.Error):
        received = 0
    log.error("%s: %s: whole file quarantined", path.name, error)
    target = ledger.move_aside(path, settings.QUARANTINE_DIR / source.name, file_hash, str(error))
    outcome = FileOutcome(
        source.name,
        path.name,
        file_hash,
        "rejected",
        rows_received=received,
        rows_quarantined=received,
        reason=str(error),
    )
    quarantine_records(
        conn,
        source.name,
        path.name,
        file_hash,
        [QuarantinedRecord(0, error.rule, str(error), {"_quarantined_file": str(target)})],
        run_id,
    )
    ledger.record(conn, outcome, run_id)
    conn.commit()
    return outcome


def _reconcile_and_record(
    conn: psycopg.Connection, source: FileSource, landing: FileLanding, run_id: str
) -> FileOutcome:
    name = landing.path.name
    received = landing.received.result()
    loaded = _loaded_count(conn, source, landing.file_hash)
    quarantined = len(landing.quarantined)
    if loaded != landing.rows_loaded or received != loaded + quarantined:
        conn.rollback()
        raise ReconciliationError(
            f"{name}: received {received} != loaded {loaded} + quarantined {quarantined}"
            f" (the loader handed over {landing.rows_loaded}); the file stays in landing"
        )
    quarantine_records(conn, source.name, name, landing.file_hash, landing.quarantined, run_id)
    outcome = FileOutcome(
        source.name,
        name,
        landing.file_hash,
        "loaded",
        rows_received=received,
        rows_loaded=loaded,
        rows_quarantined=quarantined,
        new_columns=landing.new_columns,
        quarantined_by_rule=dict(Counter(record.rule for record in landing.quarantined)),
        code_sets=source.rules.code_sets(),
    )
    ledger.record(conn, outcome, run_id)
    conn.commit()
    ledger.move_aside(landing.path, settings.ARCHIVE_DIR / source.name, landing.file_hash)
    log.info("%s: received %d = loaded %d + quarantined %d", name, received, loaded, quarantined)
    return outcome


def land(
    source: FileSource, warehouse: Warehouse, run_id: str, paths: list[Path] | None = None
) -> list[FileOutcome]:
    """Land every new file of `source` (or just `paths`, in that order); return what happened to
    each file found."""
    if paths is None:
        paths = sorted(source.landing_dir.glob(source.pattern))
    outcomes: list[FileOutcome] = []
    landings: list[FileLanding] = []
    with (
        psycopg.connect(**warehouse.connect_kwargs("loader")) as conn,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="count") as counter,
    ):
        seen: set[str] = set()
        for path in paths:
            kind = file_limits.not_a_regular_file(path)
            if kind is not None:
                outcomes.append(_refuse_not_a_file(conn, source, path, kind, run_id))
                continue
            file_hash = ledger.content_hash(path)
            if file_hash in seen or ledger.already_recorded(conn, file_hash):
                log.info("%s: already landed (same content), archived without loading", path.name)
                ledger.move_aside(path, settings.ARCHIVE_DIR / source.name, file_hash)
                outcomes.append(FileOutcome(source.name, path.name, file_hash, "duplicate"))
                continue
            seen.add(file_hash)
            try:
                file_limits.check_size(path)
                reader = source.open(path, source.rules)
            except FileUnreadable as error:
                outcomes.append(_reject_file(conn, source, path, file_hash, error, run_id))
                continue
            received = counter.submit(source.count_records, path)
            landings.append(FileLanding(path, file_hash, reader, received))
        if not landings:
            return outcomes

        pipeline = dlt_pipeline.pipeline(f"{source.name}_files", source.dataset, warehouse)
        if pipeline.abort_packages():  # an earlier attempt died with packages pending
            pipeline.load()  # completes the aborted package without loading the rest of it
        _forget_partial_loads(conn, source, [landing.file_hash for landing in landings])
        conn.commit()
        log.info("%s: landing %d files", source.name, len(landings))
        import dlt

        keys = RecordKeys(conn, source) if source.rules.record_key else None
        resource = dlt.resource(
            _rows(source, landings, keys), name=source.table, write_disposition="append"
        )
        pipeline.run(resource, loader_file_format="parquet")
        _ensure_key_indexes(conn, source)

        for landing in landings:
            outcomes.append(_reconcile_and_record(conn, source, landing, run_id))
        dlt_pipeline.forget_loaded_packages(pipeline)
    return outcomes
