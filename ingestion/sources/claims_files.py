"""Insurance claims: JSON files (`claims_<date>_<seq>.json`), each an array of claims with a nested
list of service lines and an insurance object. Service lines land as a child table, keyed to their
claim by (file hash, claim position).
"""

from __future__ import annotations

from pathlib import Path

from ingestion.file_formats import JsonArrayReader, count_json_array_records
from ingestion.file_source import FileSource
from ingestion.sources import FILE_PATTERNS
from ingestion.validation import RuleSet, load_rules


def open_claims(path: Path, rules: RuleSet) -> JsonArrayReader:
    return JsonArrayReader(path, rules.required_columns, children=list(rules.children))


CLAIMS_FILES = FileSource(
    name="claims",
    pattern=FILE_PATTERNS["claims"],
    dataset="raw_claims",
    table="claims",
    rules=load_rules("claims"),
    open=open_claims,
    count_records=count_json_array_records,
    child_tables={"services": "claim_service_lines"},
)
