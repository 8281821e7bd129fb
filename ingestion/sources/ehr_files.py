"""EHR batch extracts: CSV files named `ehr_<date>_<seq>.csv`, one encounter a row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ingestion.file_source import FileSource, UnreadableFile
from ingestion.validation import load_rules

RULES = load_rules("ehr_encounters")


def read_extract(path: Path) -> pd.DataFrame:
    """Every column as text, exactly as sent; empty cells stay empty strings."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UnreadableFile(f"not a readable CSV file: {type(error).__name__}") from error
    missing = [column for column in RULES.columns if column not in frame.columns]
    if missing:
        raise UnreadableFile(f"header lacks the columns {', '.join(missing)}")
    return frame[RULES.columns]


EHR_FILES = FileSource(
    name="ehr",
    pattern="ehr_*.csv",
    dataset="raw_ehr",
    table="encounters",
    rules=RULES,
    read=read_extract,
)
