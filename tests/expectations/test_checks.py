"""The gate's configuration (expectations/quality.yml) as checks, without a database."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from common import settings
from expectations import checks
from ingestion.sources.registry import FILE_SOURCES
from ingestion.validation import load_rules

HEADER = (
    "thresholds: {completeness: 0.95, uniqueness: 0.99, validity: 0.9, freshness_hours: 24}\n"
    "landed:\n  raw_ehr.encounters:\n    source: ehr\n    checks:\n"
)
FOOTER = "freshness: {}\npublished: {}\n"


def load(tmp_path, *check_lines: str) -> checks.QualityConfig:
    config = tmp_path / "quality.yml"
    config.write_text(HEADER + "".join(f"      - {line}\n" for line in check_lines) + FOOTER)
    return checks.load(config)


def test_the_projects_configuration_loads_and_every_check_becomes_an_expectation():
    quality = checks.load()
    assert quality.thresholds == checks.Thresholds(0.95, 0.99, 0.90, 24)
    sources = {table.source for table in quality.landed}
    assert set(FILE_SOURCES) | {"fhir", "research"} == sources == set(quality.freshness)
    for table in [*quality.landed, *quality.published]:
        for check in table.checks:
            expectation = checks.expectation(check, quality.thresholds, date(2026, 11, 30))
            assert expectation.meta == {
                "severity": check.severity,
                "rule": check.rule,
                "dimension": check.dimension,
            }


@pytest.mark.parametrize(
    ("check_lines", "refusal"),
    [
        (["{check: looks_fine, column: b, severity: blocking}"], "check 1: unknown check"),
        (["{check: not_null, column: a, severity: fatal}"], "check 1: severity must be one of"),
        (["{check: between, column: a, severity: warning}"], "check 1: between needs min or max"),
        (["{check: not_null, severity: warning}"], "check 1: names no column"),
        (
            ["{check: not_null, column: a, severity: warning}"] * 2,
            "check 2: rule a_not_null is named twice",
        ),
        (
            ["{check: between, column: a, as: 'date; drop table x', min: 1, severity: warning}"],
            "check 1: as: .* is not one of date",
        ),
    ],
)
def test_a_check_the_gate_cannot_run_is_refused_with_its_place(tmp_path, check_lines, refusal):
    with pytest.raises(checks.ConfigError, match=f"raw_ehr.encounters: {refusal}"):
        load(tmp_path, *check_lines)


def test_today_and_tomorrow_in_a_bound_are_the_validation_day(tmp_path):
    [table] = load(tmp_path, "{check: between, column: t, min: '2000-01-01', max: tomorrow,"
                   " severity: blocking}").landed  # fmt: skip
    assert table.checks[0].bounds(date(2026, 11, 30)) == ("2000-01-01", "2026-12-01")


def test_a_not_null_check_of_a_raw_table_reads_a_blank_as_missing(tmp_path):
    [table] = load(tmp_path, "{check: not_null, column: note, severity: warning}").landed
    assert (table.checks[0].cast, table.checks[0].column) == ("text", "note__text")


def test_a_blocking_check_of_an_api_source_is_refused(tmp_path):
    config = tmp_path / "quality.yml"
    config.write_text(
        HEADER.replace("source: ehr", "source: fhir")
        + "      - {check: not_null, column: id, severity: blocking}\n"
        + FOOTER
    )
    with pytest.raises(checks.ConfigError, match="a check of an API source can only warn"):
        checks.load(config)


def test_the_published_encounters_accept_every_diagnosis_landing_accepts():
    """The gate's hand-written suite holds fct_encounters' diagnosis codes to landing's own
    ICD-10-CM shape (ingestion/rules/ehr_encounters.yml): a U code that lands (U07.1, COVID-19)
    is never what blocks a publication."""
    suite = json.loads(
        (settings.PROJECT_ROOT / "expectations/suites/fct_encounters.json").read_text()
    )
    [published] = [
        item["kwargs"]["regex"]
        for item in suite["expectations"]
        if item["kwargs"].get("column") == "diagnosis_code" and "regex" in item["kwargs"]
    ]
    [landing] = [
        rule.options["pattern"]
        for rule in load_rules("ehr_encounters").rules
        if rule.name == "diagnosis_code_is_icd10cm_format"
    ]
    assert published == landing
    assert re.match(published, "U07.1") and re.match(published, "U09.9")
