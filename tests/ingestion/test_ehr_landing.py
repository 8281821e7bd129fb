"""Landing EHR extracts: the ledger, the archive and the rejected-files folder."""

from __future__ import annotations

import psycopg

from ingestion.file_source import land
from ingestion.sources.ehr_files import EHR_FILES


def test_unreadable_extract_is_set_aside_with_its_reason_and_recorded(test_warehouse):
    landing = test_warehouse.landing_dir / "ehr"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "ehr_2024-05-01_001.csv").write_text("patient_id,visit_date\nPAT_1,2024-05-01\n")

    outcomes = land(EHR_FILES, test_warehouse.warehouse, "run_unreadable")

    assert [(o.status, o.reason) for o in outcomes] == [
        (
            "rejected",
            (
                "required_columns_present: lacks the required columns diagnosis_code,"
                " physician_id, department"
            ),
        )
    ]
    rejected = test_warehouse.var_dir / "quarantine" / "ehr" / "ehr_2024-05-01_001.csv"
    assert rejected.exists()
    assert (
        "required_columns_present" in rejected.with_name(rejected.name + ".reason.txt").read_text()
    )
    assert not any(landing.iterdir())
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        status = conn.execute(
            "select status from audit.file_ledger where run_id = 'run_unreadable'"
        ).fetchall()
    assert status == [("rejected",)]


def test_the_same_content_twice_in_one_drop_is_landed_once(test_warehouse):
    landing = test_warehouse.landing_dir / "ehr"
    content = (
        "patient_id,visit_date,diagnosis_code,diagnosis_description,treatment_code,"
        "physician_id,department\n"
        "PAT_10001,2024-05-02,I10,Essential (primary) hypertension,MED001,DOC_001,Cardiology\n"
    )
    (landing / "ehr_2024-05-02_001.csv").write_text(content)
    (landing / "ehr_2024-05-02_002.csv").write_text(content)

    outcomes = land(EHR_FILES, test_warehouse.warehouse, "run_twice")

    assert sorted(o.status for o in outcomes) == ["duplicate", "loaded"]
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        loaded = conn.execute(
            "select count(*) from raw_ehr.encounters join audit.file_ledger on file_key = _file_key"
            " where file_name like 'ehr_2024-05-02%%'"
        ).fetchone()[0]
    assert loaded == 1
