"""dbt's own view of the project: every mart under contract, every model and column described.

`dbt parse` needs no database: the profile's connection settings are placeholders here.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from common import settings

MART_PREFIXES = ("dim_", "fct_", "mart_")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    target = tmp_path_factory.mktemp("dbt_target")
    env = {
        **os.environ,
        "DBT_WAREHOUSE_HOST": "127.0.0.1",
        "DBT_WAREHOUSE_PORT": "1",
        "DBT_WAREHOUSE_DATABASE": "warehouse",
        "WAREHOUSE_TRANSFORMER_PASSWORD": "unused-by-parse",
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target / "logs"),
    }
    result = subprocess.run(
        [str(settings.VENV_BIN / "dbt"), "parse", "--no-partial-parse"],
        cwd=settings.DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    return json.loads(Path(target / "manifest.json").read_text())


def _models(manifest: dict) -> list[dict]:
    return [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]


def test_every_mart_has_an_enforced_contract_and_typed_described_columns(manifest):
    marts = [m for m in _models(manifest) if m["name"].startswith(MART_PREFIXES)]
    names = {m["name"] for m in marts}
    assert {
        "dim_patient", "dim_provider", "dim_diagnosis", "dim_procedure", "dim_date",
        "dim_facility", "fct_encounters", "fct_claims", "fct_claim_lines", "fct_vital_signs",
        "fct_vital_signs_hourly", "fct_trial_enrollments", "mart_readmissions_30d",
        "mart_claims_by_provider", "mart_chronic_conditions", "mart_regulatory_summary",
    } <= names  # fmt: skip
    problems = []
    for mart in marts:
        if not mart["config"]["contract"]["enforced"]:
            problems.append(f"{mart['name']}: contract not enforced")
        if not mart["description"].strip():
            problems.append(f"{mart['name']}: no description")
        for column in mart["columns"].values():
            if not column["description"].strip():
                problems.append(f"{mart['name']}.{column['name']}: no description")
            if not column.get("data_type"):
                problems.append(f"{mart['name']}.{column['name']}: no data type")
    assert problems == []


def test_every_model_and_its_columns_are_described(manifest):
    problems = []
    for model in _models(manifest):
        if not model["description"].strip():
            problems.append(f"{model['name']}: no description")
        if not model["columns"]:
            problems.append(f"{model['name']}: no column documented")
        problems.extend(
            f"{model['name']}.{name}: no description"
            for name, column in model["columns"].items()
            if not column["description"].strip()
        )
    assert problems == []


def test_the_vitals_fact_stays_incremental(manifest):
    fact = next(m for m in _models(manifest) if m["name"] == "fct_vital_signs")
    assert fact["config"]["materialized"] == "incremental"
    assert fact["config"]["unique_key"] == "reading_key"
    assert fact["config"]["on_schema_change"] == "append_new_columns"


def test_every_crosswalk_model_is_locked_and_never_rebuilt(manifest):
    crosswalks = [m for m in _models(manifest) if "crosswalk" in m["fqn"]]
    assert {m["name"] for m in crosswalks} == {
        "patient_crosswalk",
        "patient_anchors",
        "identifier_crosswalk",
        "device_crosswalk",
    }
    for model in crosswalks:
        config = model["config"]
        assert (model["schema"], config["materialized"]) == ("crosswalk", "incremental")
        assert config["full_refresh"] is False


# Where the landing rules of each raw table are (ingestion/rules/<file>.yml, a child table's under
# `children`), and the checks that bound what a text column may hold.
RULES_OF = {
    ("ehr", "encounters"): ("ehr_encounters", None),
    ("ehr", "patients"): ("ehr_patients", None),
    ("claims", "claims"): ("claims", None),
    ("claims", "claim_service_lines"): ("claims", "services"),
    ("vitals", "readings"): ("vitals", None),
}
BOUNDING_CHECKS = {"pattern", "npi", "icd10cm"}
NON_TEXT_TYPES = {"number", "money", "integer", "date", "timestamp"}
BOUNDED_ELSEWHERE = {
    # the loader files each resource under the type its R4B validation read
    ("fhir", "resources", "resource_type"),
}
# Columns a model classifies (the FHIR staging models classify the elements they extract) and
# keeps as they are: each with why it is no free text.
KEPT_BY_MODELS = {
    ("stg_fhir__observations", "value_as_sent"): "a number (valueQuantity.value, cast)",
    ("stg_fhir__observations", "value"): "a number",
    ("stg_fhir__observations", "component_number"): "a number (a component's place, ordinality)",
    ("stg_fhir__practitioners", "npi"): "published only as ten digits (dim_provider)",
    ("stg_fhir__practitioners", "given_name"): "a practitioner's name: providers are published",
    ("stg_fhir__practitioners", "family_name"): "a practitioner's name: providers are published",
    ("stg_fhir__practitioners", "source_updated_at"): "a time, never published",
    ("patient_crosswalk", "patient_key"): "a random key the warehouse draws",
    ("device_crosswalk", "device_key"): "a random key the warehouse draws",
    ("identifier_crosswalk", "identifier_type"): "the warehouse's own label",
    ("identifier_crosswalk", "surrogate_key"): "a random key the warehouse draws",
}


def test_text_a_source_writes_freely_is_never_published_as_sent(manifest):
    """A raw text column published as sent (`kept`) is bounded by a landing rule (a pattern, an
    NPI's check digit, the ICD-10-CM code set); any other is titled from a code set, listed or
    formatted (macros/free_text.sql), or not published (docs/deidentification.md, Free text)."""
    rules = {}
    for path in (settings.PROJECT_ROOT / "ingestion" / "rules").glob("*.yml"):
        rules[path.stem] = yaml.safe_load(path.read_text())
    unbounded = []
    for source in manifest["sources"].values():
        for name, column in source["columns"].items():
            if (column.get("meta") or {}).get("deid_treatment") != "kept":
                continue
            key = (source["source_name"], source["name"])
            if (*key, name) in BOUNDED_ELSEWHERE or (column.get("data_type") or "text") != "text":
                continue
            if key not in RULES_OF:
                unbounded.append(".".join((*key, name)))
                continue
            rule_file, child = RULES_OF[key]
            declared = rules[rule_file]["children"][child] if child else rules[rule_file]["columns"]
            typed = {c["name"] for c in declared if c.get("type") in NON_TEXT_TYPES}
            checked = {
                rule["column"]
                for rule in rules[rule_file]["rules"]
                if rule["check"] in BOUNDING_CHECKS and rule.get("table") == child
            }
            if name not in typed | checked:
                unbounded.append(".".join((*key, name)))
    for model in _models(manifest):
        for name, column in model["columns"].items():
            kept = (column.get("meta") or {}).get("deid_treatment") == "kept"
            if kept and (model["name"], name) not in KEPT_BY_MODELS:
                unbounded.append(f"{model['name']}.{name}")
    assert unbounded == []
