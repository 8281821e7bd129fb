"""Row rules from configuration: each broken rule is named, no value is repeated back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from ingestion.validation import (
    load_rules,
    parse_timestamps,
    settle_ambiguous_local_times,
    validate,
)

EHR = load_rules("ehr_encounters")
CLAIMS = load_rules("claims")
VITALS = load_rules("vitals")


def _table(rows: list[dict]) -> pa.Table:
    names = sorted({key for row in rows for key in row})
    return pa.table({n: pa.array([row.get(n) for row in rows], pa.string()) for n in names})


def _check(rows: list[dict], rules, children=None):
    positions = np.arange(1, len(rows) + 1, dtype=np.int64)
    return validate(_table(rows), rules, positions, children)


def _encounter(**changes) -> dict:
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


def test_a_clean_encounter_passes():
    assert not _check([_encounter()], EHR).failed.any()


def test_each_encounter_defect_is_rejected_under_its_rule():
    verdict = _check(
        [
            _encounter(patient_id=""),
            _encounter(visit_date="2024-02-30"),
            _encounter(visit_date="15/03/2024"),
            _encounter(diagnosis_code="i10?"),
            _encounter(diagnosis_code="I10.9"),
            _encounter(),
        ],
        EHR,
    )
    assert list(verdict.failed) == [True, True, True, True, True, False]
    assert list(verdict.first_rule[:5]) == [
        "patient_id_required",
        "visit_date_is_iso_date",
        "visit_date_is_iso_date",
        "diagnosis_code_is_icd10cm_format",
        "diagnosis_code_in_icd10cm",
    ]


@pytest.mark.parametrize("code", ["U07.1", "U09.9", "I10", "E11.9", "S72.001A"])
def test_complete_icd10cm_codes_pass_u_codes_among_them(code):
    """U07.1 (COVID-19) and U09.9 (post COVID-19 condition) are in the code set: the shape
    allows every letter."""
    assert not _check([_encounter(diagnosis_code=code)], EHR).failed.any()


@pytest.mark.parametrize("heading", ["E11", "U07", "I21", "S72.00"])
def test_a_category_heading_as_a_diagnosis_is_held_under_its_own_rule(heading):
    """E11 (type 2 diabetes) has codes below it: a heading, no diagnosis. The reason names the
    code set's version; a code outside the set fails another rule, not this one."""
    verdict = _check([_encounter(diagnosis_code=heading)], EHR)
    assert verdict.first_rule[0] == "diagnosis_code_is_complete"
    [reason] = verdict.reasons[0]
    assert "ICD-10-CM April 1, 2026" in reason and heading not in reason
    unknown = _check([_encounter(diagnosis_code="I10.9")], EHR)
    assert list(unknown.first_rule) == ["diagnosis_code_in_icd10cm"]
    assert len(unknown.reasons[0]) == 1 and "ICD-10-CM April 1, 2026" in unknown.reasons[0][0]


def test_reasons_name_the_rule_and_column_but_never_the_value():
    verdict = _check([_encounter(visit_date="2024-02-30", patient_id="PAT_99999")], EHR)
    reason = "; ".join(verdict.reasons[0])
    assert "visit_date_is_iso_date" in reason and "visit_date" in reason
    assert "2024-02-30" not in reason and "PAT_99999" not in reason


def _claim(total="150.00", npi="1234567893", **changes) -> dict:
    row = {
        "claim_id": "CLM_1",
        "patient_id": "PAT_10001",
        "provider_id": "PROV_001",
        "billing_provider_npi": npi,
        "rendering_provider_npi": "1245319599",
        "service_date": "2024-03-15",
        "total_amount": total,
    }
    return {**row, **changes}


def _lines(*amounts: str, codes=None) -> pa.Table:
    codes = codes or ["99213"] * len(amounts)
    return pa.table(
        {
            "procedure_code": pa.array(codes, pa.string()),
            "amount": pa.array(list(amounts), pa.string()),
            "units": pa.array(["1"] * len(amounts), pa.string()),
            "_parent_position": pa.array([1] * len(amounts), pa.int64()),
            "_line": pa.array(list(range(1, len(amounts) + 1)), pa.int64()),
        }
    )


def test_claim_whose_total_matches_its_lines_passes():
    verdict = _check([_claim("150.00")], CLAIMS, {"services": _lines("100.00", "50.00")})
    assert not verdict.failed.any()


def test_claim_total_not_matching_its_lines_is_rejected():
    verdict = _check([_claim("150.00")], CLAIMS, {"services": _lines("100.00", "40.00")})
    assert verdict.first_rule[0] == "claim_total_matches_lines"


@pytest.mark.parametrize("npi", ["1234567890", "123456789", "12345678AB"])
def test_npi_with_a_wrong_check_digit_or_shape_is_rejected(npi):
    verdict = _check([_claim(npi=npi)], CLAIMS, {"services": _lines("150.00")})
    assert verdict.first_rule[0] == "billing_provider_npi_check_digit"


def test_a_bad_service_line_rejects_its_claim_and_names_the_line():
    services = _lines("100.00", "50.00", codes=["99213", "9921"])
    verdict = _check([_claim("150.00")], CLAIMS, {"services": services})
    assert verdict.first_rule[0] == "procedure_code_is_cpt_or_hcpcs"
    assert "services[2]" in verdict.reasons[0][0]


@pytest.mark.parametrize(
    "code", ["99213", "3074F", "0042T", "0001U", "0364U", "0002M", "0018M", "J1100", "G0438"]
)
def test_every_cpt_category_and_hcpcs_level_ii_format_lands(code):
    """Category I, II (F), III (T), Proprietary Laboratory Analyses (U), administrative MAAA
    codes (M), HCPCS Level II."""
    verdict = _check([_claim("150.00")], CLAIMS, {"services": _lines("150.00", codes=[code])})
    assert not verdict.failed.any()


@pytest.mark.parametrize("code", ["0001X", "001U", "W1234", "99213U"])
def test_a_procedure_code_of_no_cpt_or_hcpcs_shape_is_held(code):
    verdict = _check([_claim("150.00")], CLAIMS, {"services": _lines("150.00", codes=[code])})
    assert verdict.first_rule[0] == "procedure_code_is_cpt_or_hcpcs"


@pytest.mark.parametrize("amount", ["-5.00", "50000.01"])
def test_amounts_outside_zero_to_fifty_thousand_are_rejected(amount):
    verdict = _check([_claim(amount)], CLAIMS, {"services": _lines(amount)})
    assert verdict.first_rule[0] == "total_amount_in_range"


def _stay(**changes) -> dict:
    """An institutional claim: a hospital inpatient stay billed whole (type of bill 0111)."""
    stay = {
        "type_of_bill": "0111",
        "admission_date": "2024-03-10",
        "discharge_date": "2024-03-15",
        "discharge_status": "01",
    }
    return _claim("150.00", **{**stay, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"discharge_status": "07"},  # against medical advice
        {"discharge_status": "20"},  # expired
        {"discharge_status": "02", "discharge_date": "2024-03-10"},  # transferred the same day
        {"type_of_bill": "0112", "discharge_status": "30", "discharge_date": None},  # interim
        {"type_of_bill": "0131", "admission_date": None, "discharge_date": None},  # outpatient
    ],
)
def test_an_institutional_claim_lands(changes):
    verdict = _check([_stay(**changes)], CLAIMS, {"services": _lines("150.00")})
    assert not verdict.failed.any(), verdict.reasons


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"type_of_bill": "111"}, "type_of_bill_is_nubc_format"),
        ({"type_of_bill": "0911"}, "type_of_bill_is_nubc_format"),
        ({"discharge_status": "1"}, "discharge_status_is_nubc_code"),
        ({"discharge_status": "08"}, "discharge_status_is_nubc_code"),  # retired by NUBC
        ({"discharge_status": "99"}, "discharge_status_is_nubc_code"),
        ({"discharge_date": "2024-03-09"}, "discharge_not_before_admission"),
        ({"admission_date": "2024-02-30"}, "admission_date_is_date"),
    ],
)
def test_an_institutional_claim_breaking_a_rule_is_held_under_it(changes, rule):
    verdict = _check([_stay(**changes)], CLAIMS, {"services": _lines("150.00")})
    assert verdict.first_rule[0] == rule
    dates = [value for value in changes.values() if "-" in value]
    assert not any(date in reason for date in dates for reason in verdict.reasons[0])


def _reading(**measurements) -> dict:
    row = {
        "device_id": "DEV_1",
        "patient_id": "PAT_10001",
        "timestamp": "2024-03-15T10:30:00Z",
        "measurements__heart_rate": "72",
        "measurements__blood_pressure__systolic": "120",
        "measurements__blood_pressure__diastolic": "80",
        "measurements__temperature": "98.6",
        "measurements__oxygen_saturation": "98",
        "measurements__respiratory_rate": "16",
    }
    return {**row, **{f"measurements__{k}": v for k, v in measurements.items()}}


def test_abnormal_but_possible_vitals_are_valid():
    rows = [
        _reading(heart_rate="35"),
        _reading(temperature="104.5"),
        _reading(oxygen_saturation="82"),
    ]
    assert not _check(rows, VITALS).failed.any()


def test_a_reading_lands_whole_whatever_its_vitals_hold():
    """Asystole, an SpO2 of -1, a temperature no probe reads: each vital is classified downstream
    (monitoring/vital_validity.py, staging), never by throwing the reading away."""
    rows = [
        _reading(heart_rate="0"),
        _reading(heart_rate="400"),
        _reading(oxygen_saturation="-1"),
        _reading(temperature="200"),
        _reading(blood_pressure__systolic="60", blood_pressure__diastolic="80"),
    ]
    assert not _check(rows, VITALS).failed.any()


def test_a_vital_that_is_not_a_number_is_rejected():
    verdict = _check([_reading(heart_rate="fast")], VITALS)
    assert verdict.first_rule[0] == "measurements__heart_rate_is_number"


def test_a_clock_up_to_a_day_ahead_lands_and_one_further_ahead_is_held():
    # the vitals processor scores a reading ahead and raises an operational alert (clock_ahead,
    # tests/monitoring/test_nothing_stops_quietly.py); a day ahead is no reading of today
    now = datetime.now(UTC)
    rows = [
        _reading(),
        {**_reading(), "timestamp": (now + timedelta(minutes=10)).isoformat()},
        # UTC sent without an offset, read as New York time: hours ahead
        {**_reading(), "timestamp": now.replace(tzinfo=None).isoformat()},
        {**_reading(), "timestamp": (now + timedelta(days=2)).isoformat()},
    ]
    verdict = _check(rows, VITALS)
    assert verdict.failed.tolist() == [False, False, False, True]
    assert verdict.first_rule[3] == "timestamp_not_in_future"
    assert verdict.reasons[3] == [
        "timestamp_not_in_future: timestamp is more than 1440 minutes in the future"
    ]


def test_a_reading_from_a_clock_reset_to_1970_is_rejected():
    rows = [_reading(), {**_reading(), "timestamp": "1970-01-01T00:00:05Z"}]
    verdict = _check(rows, VITALS)
    assert verdict.failed.tolist() == [False, True]
    assert verdict.reasons[1] == ["timestamp_not_before_2000: timestamp is before 2000-01-01"]


def test_timestamps_honour_their_offset_and_read_local_times_in_the_source_zone():
    values = pa.array(
        [
            "2024-03-15T10:30:00Z",
            "2024-03-15T10:30:00+02:00",
            "2024-03-15T10:30:00",
            "2024-03-10T02:30:00",
        ]
    )
    parsed = parse_timestamps(values, "America/New_York").to_pylist()
    assert parsed[0] == datetime(2024, 3, 15, 10, 30, tzinfo=UTC)
    assert parsed[1] == datetime(2024, 3, 15, 8, 30, tzinfo=UTC)
    assert parsed[2] == datetime(2024, 3, 15, 14, 30, tzinfo=UTC)  # EDT is UTC-4
    assert parsed[3] is None  # 02:30 did not happen in New York on 2024-03-10


def test_the_autumn_s_repeated_hour_is_settled_by_each_device_s_order_or_held():
    # New York fell back at 02:00 EDT on 2024-11-03: 01:00-01:59 happened twice
    rows = [
        # device A's clock steps back from 01:55 to 01:05: before the step summer time (EDT),
        # from it on standard time (EST)
        {**_reading(), "device_id": "A", "timestamp": "2024-11-03T01:50:00"},
        {**_reading(), "device_id": "A", "timestamp": "2024-11-03T01:55:00"},
        {**_reading(), "device_id": "B", "timestamp": "2024-11-03T01:20:00"},  # nothing settles it
        {**_reading(), "device_id": "A", "timestamp": "2024-11-03T01:05:00"},
        {**_reading(), "device_id": "A", "timestamp": "2024-11-03T01:10:00"},
        {**_reading(), "device_id": "A", "timestamp": "2024-11-03T00:30:00Z"},  # an offset: as is
    ]
    rules = load_rules("vitals")
    settled = settle_ambiguous_local_times(_table(rows), rules)
    parsed = parse_timestamps(settled.column("timestamp"), rules.time_zone).to_pylist()
    assert parsed == [
        datetime(2024, 11, 3, 5, 50, tzinfo=UTC), datetime(2024, 11, 3, 5, 55, tzinfo=UTC), None,
        datetime(2024, 11, 3, 6, 5, tzinfo=UTC), datetime(2024, 11, 3, 6, 10, tzinfo=UTC),
        datetime(2024, 11, 3, 0, 30, tzinfo=UTC),
    ]  # fmt: skip
    # the one nothing settles is held in quarantine, saying why; never dropped
    verdict = validate(settled, rules, np.arange(1, len(rows) + 1, dtype=np.int64))
    assert verdict.failed.tolist() == [False, False, True, False, False, False]
    assert verdict.first_rule[2] == "timestamp_is_timestamp"
    assert "the autumn's repeated hour" in verdict.reasons[2][0]
