"""EHR batch extracts (CSV): encounters in `ehr_<date>_<seq>.csv`, one encounter a row, and the
patient registry in `patients_<date>_<seq>.csv`, one patient a row."""

from __future__ import annotations

from pathlib import Path

from ingestion.file_formats import CsvReader, count_csv_records
from ingestion.file_source import FileSource
from ingestion.sources import FILE_PATTERNS
from ingestion.validation import RuleSet, load_rules


def open_extract(path: Path, rules: RuleSet) -> CsvReader:
    return CsvReader(path, rules.required_columns)


EHR_FILES = FileSource(
    name="ehr",
    pattern=FILE_PATTERNS["ehr"],
    dataset="raw_ehr",
    table="encounters",
    rules=load_rules("ehr_encounters"),
    open=open_extract,
    count_records=count_csv_records,
)

EHR_PATIENT_FILES = FileSource(
    name="ehr_patients",
    pattern=FILE_PATTERNS["ehr_patients"],
    dataset="raw_ehr",
    table="patients",
    rules=load_rules("ehr_patients"),
    open=open_extract,
    count_records=count_csv_records,
)
