"""How each file format becomes batches of text records, and how records are counted independently.

A reader is opened first (`open_*`), which checks the file as a whole (encoding, header, syntax)
and raises `FileUnreadable` with the reason; then its batches are read. Every value arrives as
text, exactly as sent; typing happens after validation. Records that cannot be parsed at all (a
truncated CSV line, a line of NDJSON that is not JSON) come out as `Malformed`, with their position.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

BATCH_BYTES = 64 << 20  # CSV bytes per batch: memory stays flat however large the file
JSON_BATCH_RECORDS = 50_000
_TOO_DEEP = object()  # a JSON text nested deeper than Python's parser goes


class FileUnreadable(Exception):
    """The file as a whole cannot be read: the message is the rule and reason, without values."""

    def __init__(self, rule: str, reason: str):
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


@dataclass(frozen=True)
class Malformed:
    position: int
    rule: str
    reason: str
    text: str


@dataclass
class ParsedBatch:
    records: pa.Table  # text columns, as sent
    positions: np.ndarray  # int64: each record's position in its file, from 1
    children: dict[str, pa.Table] = field(default_factory=dict)  # with _parent_position, _line
    malformed: list[Malformed] = field(default_factory=list)


def check_utf8(path: Path, max_line_bytes: int | None = None, csv_records: bool = False) -> None:
    """Raise FileUnreadable naming the first line that is not UTF-8, or, with `max_line_bytes`,
    the first line longer than that (a record too large to read): one pass, a block at a time.
    With `csv_records`, a line ends only outside quotes: a CSV record spanning many short lines
    (newlines in a quoted field) is measured whole."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1  # the line the block starts in
    record = _Record(csv_records)
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                line += block[: error.start].count(b"\n")
                raise FileUnreadable("file_is_utf8", f"line {line} is not UTF-8") from None
            if max_line_bytes is not None:
                record.measure(block, line, max_line_bytes)
            line += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FileUnreadable("file_is_utf8", f"line {line} ends inside a character") from None


class _Record:
    """The line a record starts on and its bytes so far, read a block at a time."""

    def __init__(self, csv_quotes: bool) -> None:
        self.csv_quotes = csv_quotes  # a newline inside "..." does not end a CSV record
        self.first_line, self.length, self.quoted = 1, 0, False

    def measure(self, block: bytes, line: int, most: int) -> None:
        """Take in `block`, which starts on `line`; refuse a record longer than `most`."""
        start = 0
        while (end := block.find(b"\n", start)) != -1:
            self._grow(block, start, end, most)
            line += 1
            if self.quoted:
                self.length += 1  # the newline, inside a quoted field
            else:
                self.first_line, self.length = line, 0
            start = end + 1
        self._grow(block, start, len(block), most)

    def _grow(self, block: bytes, start: int, end: int, most: int) -> None:
        self.length += end - start
        if self.csv_quotes and block.count(b'"', start, end) % 2:
            self.quoted = not self.quoted  # "" (an escaped quote) leaves it as it was
        if self.length > most:
            what = "the record starting on line" if self.csv_quotes else "line"
            raise FileUnreadable(
                "line_size",
                f"{what} {self.first_line} is longer than max_line_bytes ({most},"
                " ingestion/file_limits.yml)",
            )


def _max_line_bytes() -> int:
    from ingestion.file_limits import limits  # it raises what this module defines

    return limits().max_line_bytes


def _check_not_empty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise FileUnreadable("file_not_empty", "the file is empty (0 bytes)")


def _require_columns(found: list[str], required: list[str], hint: str = "") -> None:
    missing = [name for name in required if name not in found]
    if missing:
        raise FileUnreadable(
            "required_columns_present", f"lacks the required columns {', '.join(missing)}{hint}"
        )


# --- CSV ---------------------------------------------------------------------------------------


class CsvReader:
    def __init__(self, path: Path, required: list[str]):
        _check_not_empty(path)
        check_utf8(path, _max_line_bytes(), csv_records=True)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
        self.columns = [name.strip() for name in header]
        hint = ""
        if len(self.columns) == 1:
            for delimiter in (";", "\t", "|"):
                if delimiter in self.columns[0]:
                    hint = f" (the header looks {delimiter!r}-delimited, not comma-delimited)"
        _require_columns(self.columns, required, hint)
        if len(set(self.columns)) != len(self.columns):
            raise FileUnreadable("header_names_unique", "the header names a column twice")
        self.path = path

    def batches(self) -> Iterator[ParsedBatch]:
        malformed: list[Malformed] = []

        def on_invalid_row(row) -> str:
            # row.number counts records from 1 at the header (single-threaded reading)
            malformed.append(
                Malformed(
                    position=row.number - 1,
                    rule="record_has_every_column",
                    reason=f"has {row.actual_columns} fields where the header has"
                    f" {row.expected_columns}",
                    text=row.text,
                )
            )
            return "skip"

        reader = pa_csv.open_csv(
            self.path,
            read_options=pa_csv.ReadOptions(use_threads=False, block_size=BATCH_BYTES),
            parse_options=pa_csv.ParseOptions(
                invalid_row_handler=on_invalid_row, newlines_in_values=True
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in self.columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        next_position = 1
        for batch in reader:
            skipped = sorted(m.position for m in malformed)
            positions = _positions_around(next_position, batch.num_rows, skipped)
            if batch.num_rows:
                next_position = int(positions[-1]) + 1
            next_position = max([next_position, *(p + 1 for p in skipped)])
            yield ParsedBatch(
                records=pa.Table.from_batches([batch]),
                positions=positions,
                malformed=list(malformed),
            )
            malformed.clear()
        if malformed:
            yield ParsedBatch(
                records=pa.table({name: pa.array([], pa.string()) for name in self.columns}),
                positions=np.array([], dtype=np.int64),
                malformed=list(malformed),
            )


def _positions_around(start: int, count: int, skipped: list[int]) -> np.ndarray:
    """The first `count` positions from `start` on that are not among the `skipped` ones."""
    candidates = np.arange(start, start + count + len(skipped), dtype=np.int64)
    if skipped:
        candidates = candidates[~np.isin(candidates, np.array(skipped, dtype=np.int64))]
    return candidates[:count]


def count_csv_records(path: Path) -> int:
    """Records in a CSV file (header and blank lines excluded), counted apart from the reader.

    A newline ends a record when an even number of quote characters precede it (RFC 4180: a
    quoted field may hold newlines, and a doubled quote keeps the parity). Vectorised with numpy,
    a block at a time.
    """
    quote, newline, carriage_return = ord('"'), ord("\n"), ord("\r")
    quotes_before, records, offset, record_start = 0, 0, 0, 0
    last_byte = newline
    with path.open("rb") as handle:
        while block := handle.read(16 << 20):
            data = np.frombuffer(block, dtype=np.uint8)
            quotes = np.flatnonzero(data == quote)
            newlines = np.flatnonzero(data == newline)
            ends = newlines[((np.searchsorted(quotes, newlines) + quotes_before) & 1) == 0]
            if len(ends):
                starts = np.concatenate(([record_start - offset], ends[:-1] + 1))
                lengths = ends - starts
                before_end = data[np.maximum(ends - 1, 0)]
                lengths = lengths - ((before_end == carriage_return) & (ends > 0))
                records += int(np.count_nonzero(lengths > 0))
                record_start = offset + int(ends[-1]) + 1
            quotes_before += len(quotes)
            offset += len(block)
            last_byte = block[-1]
    if last_byte != newline and offset > record_start:
        records += 1  # the last record has no newline after it
    return max(records - 1, 0)


# --- JSON arrays of records, with nested lists as child tables --------------------------------


def _flatten(record: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}__"))
        else:
            flat[name] = value
    return flat


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _text_table(rows: list[dict[str, object]], columns: list[str]) -> pa.Table:
    return pa.table(
        {name: pa.array([_as_text(row.get(name)) for row in rows], pa.string()) for name in columns}
    )


class JsonArrayReader:
    def __init__(self, path: Path, required: list[str], children: list[str]):
        _check_not_empty(path)
        from ingestion.file_limits import check_size, json_depth, limits  # (raise FileUnreadable)

        check_size(path, "max_json_document_bytes")
        check_utf8(path)

        most = limits().max_json_depth
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as error:
            raise FileUnreadable(
                "file_is_json", f"line {error.lineno} column {error.colno}: {error.msg}"
            ) from None
        except RecursionError:
            raise FileUnreadable(
                "json_depth", f"nested deeper than max_json_depth ({most})"
            ) from None
        if json_depth(document) > most:
            raise FileUnreadable("json_depth", f"nested deeper than max_json_depth ({most})")
        if not isinstance(document, list):
            raise FileUnreadable("file_is_json_array", "the document is not a JSON array")
        self.records = document
        self.children = children
        self.malformed = [
            Malformed(
                index, "record_is_object", "the element is not a JSON object", json.dumps(item)
            )
            for index, item in enumerate(document, start=1)
            if not isinstance(item, dict)
        ]
        keys = {key for item in document if isinstance(item, dict) for key in _flatten(item)}
        self.columns = sorted(keys - set(children))
        if document:
            _require_columns(self.columns, required)

    def batches(self) -> Iterator[ParsedBatch]:
        malformed_positions = {m.position for m in self.malformed}
        for start in range(0, max(len(self.records), 1), JSON_BATCH_RECORDS):
            chunk = self.records[start : start + JSON_BATCH_RECORDS]
            positions, flat_rows, child_rows = [], [], {name: [] for name in self.children}
            for offset, item in enumerate(chunk):
                position = start + offset + 1
                if position in malformed_positions:
                    continue
                positions.append(position)
                flat = _flatten({k: v for k, v in item.items() if k not in self.children})
                flat_rows.append(flat)
                for name in self.children:
                    for line, child in enumerate(item.get(name) or [], start=1):
                        child_flat = _flatten(child) if isinstance(child, dict) else {}
                        child_rows[name].append(
                            {**child_flat, "_parent_position": position, "_line": line}
                        )
            children = {}
            for name, rows in child_rows.items():
                columns = sorted(
                    {key for row in rows for key in row} - {"_parent_position", "_line"}
                )
                table = _text_table(rows, columns)
                table = table.append_column(
                    "_parent_position",
                    pa.array([row["_parent_position"] for row in rows], pa.int64()),
                ).append_column("_line", pa.array([row["_line"] for row in rows], pa.int64()))
                children[name] = table
            yield ParsedBatch(
                records=_text_table(flat_rows, self.columns),
                positions=np.array(positions, dtype=np.int64),
                children=children,
                malformed=[m for m in self.malformed if start < m.position <= start + len(chunk)],
            )


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def count_json_array_records(path: Path) -> int:
    """Elements of the file's top-level JSON array, or 0 if it is not one: each element parsed
    and let go in turn, never the document whole beside the reader's copy of it."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        return _array_elements(text)
    except (json.JSONDecodeError, RecursionError):
        return 0


def _array_elements(text: str) -> int:
    decoder, skip = json.JSONDecoder(), _JSON_SPACE.match
    at = skip(text).end()
    if text[at : at + 1] != "[":
        return 0
    at = skip(text, at + 1).end()
    count, closed = 0, text[at : at + 1] == "]"
    while not closed:
        _, at = decoder.raw_decode(text, at)
        count += 1
        at = skip(text, at).end()
        separator = text[at : at + 1]
        if separator not in (",", "]"):
            return 0
        closed = separator == "]"
        at = skip(text, at + 1).end() if not closed else at
    return count if skip(text, at + 1).end() == len(text) else 0


# --- NDJSON: one record a line ------------------------------------------------------------------


class NdjsonReader:
    """Micro-batch files are small: the whole file is parsed on opening."""

    def __init__(self, path: Path, required: list[str]):
        _check_not_empty(path)
        check_utf8(path, _max_line_bytes())
        self.rows: list[dict[str, object]] = []
        self.positions: list[int] = []
        self.malformed: list[Malformed] = []
        from ingestion.file_limits import json_depth, limits  # it raises what this module defines

        most_deep = limits().max_json_depth
        position = 0
        with path.open(encoding="utf-8-sig") as handle:
            for line in handle:
                if not line.strip():
                    continue
                position += 1
                text = line.rstrip("\r\n")
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as error:
                    self.malformed.append(
                        Malformed(position, "line_is_json", f"not JSON: {error.msg}", text)
                    )
                    continue
                except RecursionError:
                    item = _TOO_DEEP  # deeper than the parser goes: refused below
                if item is _TOO_DEEP or json_depth(item) > most_deep:
                    self.malformed.append(
                        Malformed(
                            position, "json_depth", f"nested deeper than {most_deep}", text[:1000]
                        )
                    )
                    continue
                if not isinstance(item, dict):
                    self.malformed.append(
                        Malformed(position, "line_is_json_object", "not a JSON object", text)
                    )
                    continue
                self.rows.append(_flatten(item))
                self.positions.append(position)
        self.columns = sorted({key for row in self.rows for key in row})
        if self.rows:
            _require_columns(self.columns, required)

    def batches(self) -> Iterator[ParsedBatch]:
        yield ParsedBatch(
            records=_text_table(self.rows, self.columns),
            positions=np.array(self.positions, dtype=np.int64),
            malformed=self.malformed,
        )


def count_ndjson_records(path: Path) -> int:
    """Non-blank lines."""
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
