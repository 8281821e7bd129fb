"""Row rules from configuration: each broken rule is named, no value is repeated back."""

from __future__ import annotations

import pandas as pd

from ingestion.validation import load_rules, validate

RULES = load_rules("ehr_encounters")


def _row(**changes) -> dict:
    row = {
        "patient_id": "PAT_10001",
        "visit_date": "2024-03-15",
        "diagnosis_code": "I10",
        "diagnosis_description": "Essential (primary) hypertension",
        "treatment_code": "MED001",
        "physician_id": "DOC_001",
        "department": "Cardiology",
    }
    return {**row, **changes}


def test_a_clean_row_passes():
    checked = validate(pd.DataFrame([_row()]), RULES)
    assert len(checked.valid) == 1 and checked.rejected.empty


def test_each_defect_is_rejected_under_its_rule():
    frame = pd.DataFrame(
        [
            _row(patient_id=""),
            _row(visit_date="2024-02-30"),
            _row(diagnosis_code="i10?"),
            _row(diagnosis_code="I10.9"),
            _row(),
        ]
    )
    checked = validate(frame, RULES)
    assert list(checked.valid.index) == [4]
    assert list(checked.rejected["_rule"]) == [
        "patient_id_required",
        "visit_date_is_iso_date",
        "diagnosis_code_is_icd10cm_format",
        "diagnosis_code_in_icd10cm",
    ]


def test_reasons_name_the_rule_and_column_but_never_the_value():
    frame = pd.DataFrame([_row(visit_date="2024-02-30", patient_id="PAT_99999")])
    reason = validate(frame, RULES).rejected["_reason"].iloc[0]
    assert "visit_date_is_iso_date" in reason and "visit_date" in reason
    assert "2024-02-30" not in reason and "PAT_99999" not in reason


def test_a_row_breaking_several_rules_lists_them_all():
    frame = pd.DataFrame([_row(patient_id="", diagnosis_code="XYZ")])
    reason = validate(frame, RULES).rejected["_reason"].iloc[0]
    assert reason.count(";") == 2
