"""Hospitals send files late, twice and broken: every bad input gets a clear message naming the
file, the record's position and the rule, and nothing is lost (received = loaded + quarantined).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import psycopg
import pytest

from ingestion.file_source import land
from ingestion.sources.claims_files import CLAIMS_FILES
from ingestion.sources.ehr_files import EHR_FILES
from ingestion.sources.vitals_files import VITALS_FILES

HEADER = (
    "patient_id,visit_date,diagnosis_code,diagnosis_description,treatment_code,physician_id,"
    "department"
)
ROW = "PAT_{n},2024-03-15,I10,Essential (primary) hypertension,MED001,DOC_001,Cardiology"


def _rows(count: int, first: int = 20000) -> list[str]:
    return [ROW.format(n=first + n) for n in range(count)]


def _land(test_warehouse, source, name: str, content: bytes | str, run_id: str):
    folder = test_warehouse.landing_dir / source.name
    folder.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    (folder / name).write_bytes(data)
    outcomes = land(source, test_warehouse.warehouse, run_id)
    assert len(outcomes) == 1
    return outcomes[0]


def _quarantined(test_warehouse, file_name: str) -> list[tuple]:
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        return conn.execute(
            "select record_position, rule, reason, record from quarantine.rejected_records"
            " where file_name = %s order by record_position",
            (file_name,),
        ).fetchall()


def _ledger(test_warehouse, file_name: str) -> tuple:
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        return conn.execute(
            "select status, rows_received, rows_loaded, rows_quarantined, new_columns"
            " from audit.file_ledger where file_name = %s",
            (file_name,),
        ).fetchone()


def _accounted(outcome) -> None:
    assert outcome.rows_received == outcome.rows_loaded + outcome.rows_quarantined


def _file_rejected(test_warehouse, outcome, source: str, rule: str) -> str:
    assert outcome.status == "rejected"
    assert outcome.reason.startswith(rule)
    kept = test_warehouse.var_dir / "quarantine" / source / outcome.file_name
    assert kept.exists(), "the rejected file is kept in the quarantine folder"
    assert rule in kept.with_name(kept.name + ".reason.txt").read_text()
    [(position, stored_rule, _, record)] = _quarantined(test_warehouse, outcome.file_name)
    assert (position, stored_rule) == (0, rule)
    assert record["_quarantined_file"].endswith(outcome.file_name)
    _accounted(outcome)
    return outcome.reason


def test_empty_file_is_quarantined_whole(test_warehouse, caplog):
    outcome = _land(test_warehouse, EHR_FILES, "ehr_2024-06-01_001.csv", b"", "empty")
    _file_rejected(test_warehouse, outcome, "ehr", "file_not_empty")
    assert "ehr_2024-06-01_001.csv: file_not_empty" in caplog.text


def test_header_only_file_lands_no_rows_and_is_recorded(test_warehouse):
    outcome = _land(test_warehouse, EHR_FILES, "ehr_2024-06-01_002.csv", HEADER + "\n", "header")
    assert (outcome.status, outcome.rows_received, outcome.rows_loaded) == ("loaded", 0, 0)
    assert _ledger(test_warehouse, outcome.file_name)[:4] == ("loaded", 0, 0, 0)


def test_truncated_last_line_is_quarantined_and_the_rest_lands(test_warehouse, caplog):
    lines = [HEADER, *_rows(5), "PAT_99999,2024-03-15,I1"]
    outcome = _land(test_warehouse, EHR_FILES, "ehr_2024-06-01_003.csv", "\n".join(lines), "trunc")
    assert (outcome.rows_received, outcome.rows_loaded, outcome.rows_quarantined) == (6, 5, 1)
    [(position, rule, _, record)] = _quarantined(test_warehouse, outcome.file_name)
    assert (position, rule) == (6, "record_has_every_column")
    assert record["_raw_text"].startswith("PAT_99999")
    assert "ehr_2024-06-01_003.csv: record 6: record_has_every_column" in caplog.text
    assert "PAT_99999" not in caplog.text


def test_wrong_delimiter_is_quarantined_whole_with_a_hint(test_warehouse):
    content = "\n".join(line.replace(",", ";") for line in [HEADER, *_rows(3)])
    outcome = _land(test_warehouse, EHR_FILES, "ehr_2024-06-01_004.csv", content, "delim")
    reason = _file_rejected(test_warehouse, outcome, "ehr", "required_columns_present")
    assert "';'-delimited" in reason
    assert outcome.rows_received == 3


def test_non_utf8_bytes_quarantine_the_file_naming_the_line(test_warehouse):
    rows = _rows(4)
    rows[2] = rows[2].replace("Cardiology", "Cardiolog\xeda")
    content = "\n".join([HEADER, *rows]).encode("latin-1")
    outcome = _land(test_warehouse, EHR_FILES, "ehr_2024-06-01_005.csv", content, "latin1")
    reason = _file_rejected(test_warehouse, outcome, "ehr", "file_is_utf8")
    assert reason == "file_is_utf8: line 4 is not UTF-8"


def test_byte_order_mark_is_ignored(test_warehouse):
    content = "\ufeff" + "\n".join([HEADER, *_rows(3, first=30000)]) + "\n"
    outcome = _land(test_warehouse, EHR_FILES, "ehr_2024-06-01_006.csv", content, "bom")
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 3, 0)
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        patients = conn.execute(
            "select patient_id from raw_ehr.encounters where patient_id like 'PAT_3000%%'"
        ).fetchall()
    assert len(patients) == 3


def test_repeated_row_is_quarantined_naming_the_first(test_warehouse, caplog):
    rows = _rows(4, first=40000)
    content = "\n".join([HEADER, *rows, rows[1]]) + "\n"
    outcome = _land(test_warehouse, EHR_FILES, "ehr_2024-06-01_007.csv", content, "dup")
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (4, 1)
    [(position, rule, reason, _)] = _quarantined(test_warehouse, outcome.file_name)
    assert (position, rule) == (5, "record_not_repeated")
    assert reason.endswith("repeats record 2")


def test_a_u_code_lands_a_category_heading_waits_and_the_ledger_names_the_code_set(test_warehouse):
    """U07.1 (COVID-19) lands; E11 (a heading with codes below it) is held under its own rule;
    the file's ledger row records the ICD-10-CM release the codes were checked against."""
    rows = [
        ROW.format(n=20001).replace(",I10,Essential (primary) hypertension,", ",U07.1,COVID-19,"),
        ROW.format(n=20002).replace(",I10,", ",E11,"),
        ROW.format(n=20003),
    ]
    outcome = _land(test_warehouse, EHR_FILES, "ehr_codes.csv", "\n".join([HEADER, *rows]), "codes")
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (2, 1)
    [(position, rule, reason, _)] = _quarantined(test_warehouse, "ehr_codes.csv")
    assert (position, rule) == (2, "diagnosis_code_is_complete")
    assert "ICD-10-CM April 1, 2026" in reason
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        [(code_sets,)] = conn.execute(
            "select code_sets from audit.file_ledger where file_name = 'ehr_codes.csv'"
        ).fetchall()
    assert code_sets["icd10cm"].startswith("ICD-10-CM April 1, 2026 (CDC/NCHS")


def test_missing_required_column_quarantines_the_file(test_warehouse):
    content = "\n".join(
        [HEADER.replace(",physician_id", ""), *(r.replace(",DOC_001", "") for r in _rows(2))]
    )
    outcome = _land(test_warehouse, EHR_FILES, "ehr_2024-06-01_008.csv", content, "missing")
    reason = _file_rejected(test_warehouse, outcome, "ehr", "required_columns_present")
    assert reason.endswith("lacks the required columns physician_id")


def test_unexpected_new_column_lands_and_is_reported(test_warehouse, caplog):
    content = "\n".join(
        [HEADER + ",admission_source", *(r + ",REFERRAL" for r in _rows(2, first=50000))]
    )
    outcome = _land(test_warehouse, EHR_FILES, "ehr_2024-06-01_009.csv", content, "drift")
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 2)
    assert _ledger(test_warehouse, outcome.file_name)[4] == ["admission_source"]
    assert "new column admission_source" in caplog.text
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        sources = conn.execute(
            "select admission_source from raw_ehr.encounters where patient_id like 'PAT_5000%%'"
        ).fetchall()
    assert sources == [("REFERRAL",), ("REFERRAL",)]


def _claim(claim_id: str, total: float, amounts: list[float]) -> dict:
    return {
        "claim_id": claim_id,
        "patient_id": "PAT_10001",
        "provider_id": "PROV_001",
        "billing_provider_npi": "1234567893",
        "rendering_provider_npi": "1245319599",
        "service_date": "2024-03-15",
        "services": [
            {"procedure_code": "99213", "description": "Office visit", "amount": a, "units": 1}
            for a in amounts
        ],
        "total_amount": total,
        "insurance_info": {
            "policy_number": "POL_1",
            "group_number": "GRP_1",
            "coverage_type": "PRIMARY",
        },
    }


def test_json_syntax_error_mid_file_quarantines_the_file_naming_line_and_column(test_warehouse):
    text = json.dumps([_claim("CLM_A1", 150, [150]), _claim("CLM_A2", 100, [100])], indent=1)
    broken = text.replace('"CLM_A2",', '"CLM_A2"', 1)
    outcome = _land(test_warehouse, CLAIMS_FILES, "claims_2024-06-01_001.json", broken, "syntax")
    reason = _file_rejected(test_warehouse, outcome, "claims", "file_is_json")
    assert reason.startswith("file_is_json: line ") and "column" in reason


def test_claim_whose_total_does_not_match_is_quarantined_with_its_lines(test_warehouse, caplog):
    claims = [_claim("CLM_B1", 150, [100, 50]), _claim("CLM_B2", 150, [100, 40])]
    outcome = _land(
        test_warehouse, CLAIMS_FILES, "claims_2024-06-01_002.json", json.dumps(claims), "total"
    )
    assert (outcome.rows_received, outcome.rows_loaded, outcome.rows_quarantined) == (2, 1, 1)
    [(position, rule, _, record)] = _quarantined(test_warehouse, outcome.file_name)
    assert (position, rule) == (2, "claim_total_matches_lines")
    assert [line["amount"] for line in record["services"]] == ["100", "40"]
    assert "claims_2024-06-01_002.json: record 2: claim_total_matches_lines" in caplog.text
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        lines = conn.execute(
            "select claims.claim_id, lines.amount from raw_claims.claim_service_lines as lines"
            " join raw_claims.claims as claims using (_file_key, _record_position)"
            " where claims.claim_id like 'CLM_B%%' order by lines._line_number"
        ).fetchall()
    assert [(claim, float(amount)) for claim, amount in lines] == [("CLM_B1", 100), ("CLM_B1", 50)]


def _reading(stamp: str, heart_rate: int = 72) -> str:
    return json.dumps(
        {
            "device_id": "DEV_0001",
            "patient_id": "PAT_10001",
            "timestamp": stamp,
            "measurements": {"heart_rate": heart_rate, "temperature": 98.6},
            "device_status": "OK",
            "location": {"hospital": "General", "ward": "ICU", "room": "101"},
        }
    )


def test_non_json_ndjson_line_is_quarantined_and_the_rest_lands(test_warehouse, caplog):
    lines = [
        _reading("2024-06-01T10:00:00Z"),
        '{"device_id": "DEV_0001", "pat',
        _reading("2024-06-01T10:00:05Z"),
    ]
    outcome = _land(
        test_warehouse, VITALS_FILES, "vitals_20240601T100000_0001.ndjson", "\n".join(lines), "nd"
    )
    assert (outcome.rows_received, outcome.rows_loaded, outcome.rows_quarantined) == (3, 2, 1)
    [(position, rule, _, record)] = _quarantined(test_warehouse, outcome.file_name)
    assert (position, rule) == (2, "line_is_json")
    assert record["_raw_text"] == lines[1]
    assert "vitals_20240601T100000_0001.ndjson: record 2: line_is_json" in caplog.text


def test_timestamp_without_offset_is_read_in_the_source_time_zone(test_warehouse):
    lines = [_reading("2024-06-01T08:00:00"), _reading("2024-06-01T08:00:00+02:00")]
    outcome = _land(
        test_warehouse, VITALS_FILES, "vitals_20240601T080000_0002.ndjson", "\n".join(lines), "tz"
    )
    assert outcome.rows_loaded == 2
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        stamps = conn.execute(
            "select timestamp from raw_vitals.readings where _record_position in (1, 2)"
            " and _file_key = (select file_key from audit.file_ledger where file_name = %s)"
            " order by _record_position",
            (outcome.file_name,),
        ).fetchall()
    # America/New_York is UTC-4 in June; +02:00 is honoured as sent.
    assert [s for (s,) in stamps] == [
        datetime(2024, 6, 1, 12, 0, tzinfo=UTC),
        datetime(2024, 6, 1, 6, 0, tzinfo=UTC),
    ]


@pytest.mark.parametrize("heart_rate", [0, 400])
def test_an_extreme_or_impossible_vital_lands_with_its_reading(test_warehouse, heart_rate):
    """Classified downstream, each vital on its own (monitoring/vital_validity.py): a heart
    rate of 0 must reach the processor, which alerts on it."""
    hour = 10 if heart_rate == 0 else 11  # each case its own readings: none lands twice
    lines = [
        _reading(f"2024-06-02T{hour}:00:00Z", heart_rate),
        _reading(f"2024-06-02T{hour}:00:05Z", 35),
    ]
    name = f"vitals_20240602T100000_{heart_rate:04d}.ndjson"
    outcome = _land(test_warehouse, VITALS_FILES, name, "\n".join(lines), f"hr{heart_rate}")
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (2, 0)
    assert _quarantined(test_warehouse, name) == []


def test_same_file_dropped_twice_under_two_names_is_loaded_once(test_warehouse):
    content = "\n".join([HEADER, *_rows(3, first=60000)]) + "\n"
    first = _land(test_warehouse, EHR_FILES, "ehr_2024-06-03_001.csv", content, "twice_1")
    again = _land(test_warehouse, EHR_FILES, "ehr_2024-06-03_resent.csv", content, "twice_2")
    assert (first.status, again.status) == ("loaded", "duplicate")
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        count = conn.execute(
            "select count(*) from raw_ehr.encounters where patient_id like 'PAT_6000%%'"
        ).fetchone()[0]
    assert count == 3


def test_logs_never_carry_identifying_values(test_warehouse, caplog):
    caplog.set_level(logging.INFO)
    rows = _rows(3, first=70000)
    rows[1] = rows[1].replace("2024-03-15", "2024-02-30")
    outcome = _land(
        test_warehouse, EHR_FILES, "ehr_2024-06-04_001.csv", "\n".join([HEADER, *rows]), "phi"
    )
    assert outcome.rows_quarantined == 1
    assert "record 2: visit_date_is_iso_date" in caplog.text
    assert "PAT_7000" not in caplog.text and "2024-02-30" not in caplog.text


def test_the_same_content_twice_in_one_drop_is_landed_once(test_warehouse):
    folder = test_warehouse.landing_dir / "ehr"
    folder.mkdir(parents=True, exist_ok=True)  # this test may be the module's first
    content = "\n".join([HEADER, *_rows(2, first=80000)]) + "\n"
    (folder / "ehr_2024-06-05_001.csv").write_text(content)
    (folder / "ehr_2024-06-05_002.csv").write_text(content)
    outcomes = land(EHR_FILES, test_warehouse.warehouse, "one_drop")
    assert sorted(o.status for o in outcomes) == ["duplicate", "loaded"]
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        count = conn.execute(
            "select count(*) from raw_ehr.encounters where patient_id like 'PAT_8000%%'"
        ).fetchone()[0]
    assert count == 2


@pytest.mark.parametrize("role", ["transformer", "analyst"])
def test_only_loader_and_steward_read_the_quarantine(test_warehouse, role):
    for reader in ("loader", "steward"):
        with psycopg.connect(**test_warehouse.warehouse.connect_kwargs(reader)) as conn:
            conn.execute("select count(*) from quarantine.rejected_records").fetchone()
    with (
        psycopg.connect(**test_warehouse.warehouse.connect_kwargs(role)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("select count(*) from quarantine.rejected_records")


def test_institutional_claims_land_with_their_stay_and_a_discharge_before_admission_waits(
    test_warehouse,
):
    """The demo stays' institutional claims (demo/inpatient_stays.py) land with their type of
    bill, admission, discharge and discharge status, and staging reads them; one discharged
    before its admission is held under its rule, at its position."""
    from demo.claims_files import institutional_claims

    claims = institutional_claims()
    broken = {**claims[0], "claim_id": "CLM_IP_BROKEN", "discharge_date": "2024-01-01"}
    outcome = _land(
        test_warehouse,
        CLAIMS_FILES,
        "claims_2024-06-02_001.json",
        json.dumps([*claims, broken]),
        "institutional",
    )
    _accounted(outcome)
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (len(claims), 1)
    [(position, rule, reason, _)] = _quarantined(test_warehouse, outcome.file_name)
    assert (position, rule) == (len(claims) + 1, "discharge_not_before_admission")
    assert "2024-01-01" not in reason
    from expectations.landed import validate_landed

    validate_landed(test_warehouse.warehouse, "institutional")  # staging reads validated files
    built = test_warehouse.dbt(
        "build",
        "--select",
        "stg_claims__claims",
        "--indirect-selection=cautious",  # no test of a model left out
        build_schema="build_blue",
        run_id="claims_ip",
    )
    assert built.returncode == 0, built.stdout[-3000:]
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        staged = conn.execute(
            "select claim_id, type_of_bill, admission_date::text, discharge_date::text,"
            " discharge_status from staging.stg_claims__claims"
            " where claim_id like 'CLM_IP_%%' order by claim_id"
        ).fetchall()
    assert staged == [
        (
            claim["claim_id"],
            claim["type_of_bill"],
            claim["admission_date"],
            claim["discharge_date"],
            claim["discharge_status"],
        )
        for claim in claims
    ]
