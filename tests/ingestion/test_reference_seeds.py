"""The ICD-10-CM seeds are what the installed simple-icd-10-cm package gives, not a stale copy."""

from __future__ import annotations

import csv

from ingestion.reference.icd10cm_seed import SEEDS, render, tables


def test_icd10cm_seeds_match_the_installed_code_set():
    for name, rows in tables().items():
        assert (SEEDS / name).read_text(encoding="utf-8") == render(rows), (
            f"seeds/{name} is stale: run python -m ingestion.reference.icd10cm_seed"
        )


def test_the_code_set_is_whole_and_billable_flags_are_right():
    codes = {
        row["diagnosis_code"]: row for row in csv.DictReader((SEEDS / "icd10cm_codes.csv").open())
    }
    assert len(codes) > 98_000
    assert codes["I10"]["is_billable"] == "True"  # a category with no subcategory is billable
    assert codes["E11"]["is_billable"] == "False"
    assert codes["E11.9"]["is_billable"] == "True"
    assert codes["B10"]["block_code"] == "B10"  # a block of one category
    blocks = {row["block_code"] for row in csv.DictReader((SEEDS / "icd10cm_blocks.csv").open())}
    assert {row["block_code"] for row in codes.values()} <= blocks
