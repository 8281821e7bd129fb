"""Medical-device vitals: NDJSON micro-batches (`vitals_<timestamp>.ndjson`), one reading a line,
arriving every few seconds. Timestamps land as timestamptz; one without an offset is read in the
devices' time zone (`time_zone` in rules/vitals.yml).
"""

from __future__ import annotations

from pathlib import Path

from ingestion.file_formats import NdjsonReader, count_ndjson_records
from ingestion.file_source import FileSource
from ingestion.sources import FILE_PATTERNS
from ingestion.validation import RuleSet, load_rules


def open_micro_batch(path: Path, rules: RuleSet) -> NdjsonReader:
    return NdjsonReader(path, rules.required_columns)


VITALS_FILES = FileSource(
    name="vitals",
    pattern=FILE_PATTERNS["vitals"],
    dataset="raw_vitals",
    table="readings",
    rules=load_rules("vitals"),
    open=open_micro_batch,
    count_records=count_ndjson_records,
)
