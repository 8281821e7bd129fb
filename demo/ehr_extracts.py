"""Write realistic EHR batch extracts, a few rows wrong on purpose: encounters
(`ehr_<date>_<seq>.csv`) and the patient registry (`patients_<date>_<seq>.csv`).

    python -m demo.ehr_extracts --files 3 --rows 200

Diagnoses are real ICD-10-CM codes from `simple-icd-10-cm`, drawn from the blocks each department
sees. The defects are those hospitals send: a missing patient id, an impossible date, a code that
is not ICD-10-CM, a code in the wrong shape.
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
from datetime import date, timedelta
from pathlib import Path

import simple_icd_10_cm as cm

from common import settings
from common.whole_files import written_whole
from demo.patients import PATIENTS, person

log = logging.getLogger(__name__)

COLUMNS = [
    "patient_id",
    "visit_date",
    "diagnosis_code",
    "diagnosis_description",
    "treatment_code",
    "physician_id",
    "department",
]

# Department -> the ICD-10-CM blocks its diagnoses come from.
DEPARTMENT_BLOCKS = {
    "Cardiology": ["I10-I1A", "I20-I25", "I30-I5A"],
    "Endocrinology": ["E08-E13", "E00-E07"],
    "Pulmonology": ["J40-J4A", "J09-J18"],
    "Orthopedics": ["M15-M19", "S70-S79"],
    "Neurology": ["G40-G47"],
    "Emergency": ["R00-R09", "S00-S09"],
}

PATIENT_COLUMNS = [
    "patient_id",
    "first_name",
    "last_name",
    "sex",
    "birth_date",
    "death_date",
    "ssn",
    "street_address",
    "city",
    "state",
    "zip_code",
    "phone",
    "email",
]

DEFECTS = ("missing_patient_id", "impossible_date", "unknown_code", "malformed_code")


def _billable_codes(block: str) -> list[str]:
    return [code for code in cm.get_descendants(block) if cm.is_leaf(code)][:400]


def _catalogue() -> dict[str, list[str]]:
    return {
        department: sorted({code for block in blocks for code in _billable_codes(block)})
        for department, blocks in DEPARTMENT_BLOCKS.items()
    }


def _visit(rng: random.Random, catalogue: dict[str, list[str]], patients: int, day: date) -> dict:
    department = rng.choice(sorted(catalogue))
    code = rng.choice(catalogue[department])
    return {
        "patient_id": f"PAT_{10000 + rng.randrange(patients)}",
        "visit_date": (day - timedelta(days=rng.randrange(0, 3))).isoformat(),
        "diagnosis_code": code,
        "diagnosis_description": cm.get_description(code),
        "treatment_code": f"MED{rng.randrange(1, 250):03d}",
        "physician_id": f"DOC_{rng.randrange(1, 41):03d}",
        "department": department,
    }


def _break(row: dict, defect: str) -> dict:
    broken = dict(row)
    if defect == "missing_patient_id":
        broken["patient_id"] = ""
    elif defect == "impossible_date":
        broken["visit_date"] = broken["visit_date"][:5] + "02-30"
    elif defect == "unknown_code":
        broken["diagnosis_code"] = "I10.9"  # the shape of a code, but not one
    elif defect == "malformed_code":
        broken["diagnosis_code"] = broken["diagnosis_code"].replace(".", "").lower() + "?"
    return broken


def write_extracts(
    folder: Path,
    files: int = 3,
    rows: int = 200,
    defects_per_file: int = 3,
    patients: int = 500,
    first_day: date = date(2024, 3, 15),
    seed: int = 7,
) -> list[Path]:
    """Write `files` extracts of `rows` rows each; return their paths."""
    rng = random.Random(seed)
    catalogue = _catalogue()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(files):
        day = first_day + timedelta(days=index)
        batch = [_visit(rng, catalogue, patients, day) for _ in range(rows)]
        for position in rng.sample(range(rows), min(defects_per_file, rows)):
            batch[position] = _break(batch[position], rng.choice(DEFECTS))
        path = folder / f"ehr_{day.isoformat()}_{index + 1:03d}.csv"
        with written_whole(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(batch)
        written.append(path)
    return written


def write_visit_history(
    folder: Path,
    patients: int = 50,
    visits: int = 8,
    years: int = 10,
    last_day: date = date(2024, 3, 13),
    seed: int = 11,
) -> Path:
    """One extract of the visits of demo patients 0 .. `patients` - 1 over the `years` before
    `last_day` (never before their birth): `visits` each at random, and for a patient who turned
    90 in that span one visit in the 100 days before their 90th birthday and one in the 100 after,
    as a long-standing EHR's history would hold them."""
    rng = random.Random(seed)
    catalogue = _catalogue()
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for number in range(patients):
        someone = person(number)
        first_day = max(last_day - timedelta(days=years * 365), someone.birth_date)
        days = [
            first_day + timedelta(days=rng.randrange((last_day - first_day).days + 1))
            for _ in range(visits)
        ]
        ninetieth = someone.birth_date.replace(year=someone.birth_date.year + 90)
        if first_day + timedelta(days=100) <= ninetieth <= last_day - timedelta(days=100):
            days += [
                ninetieth - timedelta(days=rng.randrange(1, 100)),
                ninetieth + timedelta(days=rng.randrange(1, 100)),
            ]
        for day in days:
            row = _visit(rng, catalogue, 1, day)
            rows.append({**row, "patient_id": someone.patient_id, "visit_date": day.isoformat()})
    path = folder / f"ehr_{last_day.isoformat()}_history.csv"
    with written_whole(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_patient_extract(
    folder: Path, patients: int = PATIENTS, day: date = date(2024, 3, 14), first: int = 0
) -> list[Path]:
    """The registry of demo patients `first` .. `first + patients - 1` (every demo patient by
    default), every identifier filled in; the last demo patient's ZIP code malformed."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"patients_{day.isoformat()}_001.csv"
    with written_whole(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PATIENT_COLUMNS)
        writer.writeheader()
        for number in range(first, first + patients):
            someone = person(number)
            writer.writerow(
                {
                    "patient_id": someone.patient_id,
                    "first_name": someone.given_name,
                    "last_name": someone.family_name,
                    "sex": someone.sex,
                    "birth_date": someone.birth_date.isoformat(),
                    "death_date": someone.death_date.isoformat() if someone.death_date else "",
                    "ssn": someone.ssn,
                    "street_address": someone.street_address,
                    "city": someone.city,
                    "state": someone.state,
                    "zip_code": "9O21O" if number == PATIENTS - 1 else someone.zip_code,
                    "phone": someone.phone,
                    "email": someone.email,
                }
            )
    return [path]


def write_large_extract(path: Path, rows: int, seed: int = 11) -> None:
    """One large extract (benchmarks, crash tests), vectorised: one row in a thousand lacks its
    patient id. Written a block at a time, so memory stays flat."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng(seed)
    departments = sorted(DEPARTMENT_BLOCKS)
    codes = {d: [c for b in DEPARTMENT_BLOCKS[d] for c in _billable_codes(b)] for d in departments}
    all_codes = np.array([c for d in departments for c in codes[d]])
    descriptions = np.array([cm.get_description(c) for c in all_codes])
    department_of = np.array([d for d in departments for _ in codes[d]])
    block = 500_000
    with path.open("wb") as handle:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            pick = rng.integers(0, len(all_codes), n)
            days = rng.integers(0, 365, n).astype("timedelta64[D]") + np.datetime64("2024-01-01")
            table = pa.table(
                {
                    "patient_id": np.char.add(
                        "PAT_", (10000 + rng.integers(0, 50000, n)).astype(str)
                    ),
                    "visit_date": days.astype(str),
                    "diagnosis_code": all_codes[pick],
                    "diagnosis_description": descriptions[pick],
                    "treatment_code": np.char.add("MED", rng.integers(100, 999, n).astype(str)),
                    "physician_id": np.char.add("DOC_", rng.integers(100, 999, n).astype(str)),
                    "department": department_of[pick],
                }
            )
            broken = rng.random(n) < 0.001
            table = table.set_column(
                0, "patient_id", pa.array(np.where(broken, "", table.column(0).to_numpy()))
            )
            options = pa_csv.WriteOptions(include_header=start == 0)
            pa_csv.write_csv(table.select(COLUMNS), handle, write_options=options)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--folder", type=Path, default=settings.LANDING_DIR / "ehr")
    args = parser.parse_args()
    paths = write_extracts(args.folder, files=args.files, rows=args.rows)
    log.info("wrote %d EHR extracts to %s", len(paths), args.folder)


if __name__ == "__main__":
    main()
