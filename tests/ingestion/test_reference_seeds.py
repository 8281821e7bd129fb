"""The ICD-10-CM seeds are what the installed simple-icd-10-cm package gives, not a stale copy."""

from __future__ import annotations

import csv
import hashlib

import yaml

from ingestion import code_sets
from ingestion.reference.icd10cm_seed import SEEDS, code_set_version, render, tables

DBT_FULL_CHECKSUM_LIMIT = 1024 * 1024  # dbt checksums a larger seed by its path alone


def test_icd10cm_seeds_match_the_installed_code_set():
    for name, rows in tables().items():
        assert (SEEDS / name).read_text(encoding="utf-8") == render(rows), (
            f"seeds/{name} is stale: run hcw icd10cm-seeds"
        )


def test_the_seed_names_the_release_it_holds_as_landing_checks_name_it():
    assert code_sets.seed_meta("icd10cm_codes")["code_set_version"] == code_set_version(), (
        f"seeds/_seeds.yml: set icd10cm_codes' code_set_version to {code_set_version()!r}"
    )
    assert code_sets.icd10cm().version.startswith("ICD-10-CM April 1, 2026")


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


def test_every_seed_over_a_mebibyte_records_its_content_checksum():
    configs = {
        seed["name"]: seed.get("config", {})
        for seed in yaml.safe_load((SEEDS / "_seeds.yml").read_text())["seeds"]
    }
    large = [path for path in SEEDS.glob("*.csv") if path.stat().st_size > DBT_FULL_CHECKSUM_LIMIT]
    assert [path.name for path in large] == ["icd10cm_codes.csv"]
    for path in large:
        recorded = configs[path.stem].get("meta", {}).get("content_sha256")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        assert recorded == actual, f"seeds/_seeds.yml: set {path.stem}'s content_sha256 to {actual}"
