"""Write realistic insurance claim files (`claims_<date>_<seq>.json`), defects included.

    python -m demo.claims_files --files 2 --claims 100

Each file is a JSON array of claims with their service lines, an insurance object and the billing
and rendering provider NPIs; the first file also holds the institutional claims of the demo's
inpatient stays (demo/inpatient_stays.py: type of bill, admission, discharge, discharge status)
when asked for (`stays`: `make run` and this command do). The defects are those payers and clearinghouses send: a total that
is not the sum of the lines, an NPI with a wrong check digit, a malformed procedure code, a
negative amount, a claim without its id.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from datetime import date, timedelta
from pathlib import Path

from common import settings
from common.whole_files import write_whole
from demo.inpatient_stays import StayPart, parts
from demo.patients import npi, patient_id

log = logging.getLogger(__name__)

# Common procedures (CPT and HCPCS level II) with a typical charge.
PROCEDURES = [
    ("99213", "Office visit, established patient, low complexity", 150.00),
    ("99214", "Office visit, established patient, moderate complexity", 210.00),
    ("99203", "Office visit, new patient, low complexity", 180.00),
    ("93000", "Electrocardiogram, complete", 65.00),
    ("80053", "Comprehensive metabolic panel", 45.00),
    ("85025", "Complete blood count with differential", 30.00),
    ("71046", "Chest X-ray, 2 views", 120.00),
    ("36415", "Routine venipuncture", 12.00),
    ("J3420", "Injection, vitamin B-12, up to 1000 mcg", 25.00),
    ("G0439", "Annual wellness visit, subsequent", 175.00),
]
COVERAGE = ("PRIMARY", "SECONDARY")
# A hospital stay's professional services, billed on its institutional claim here (a UB-04 bills
# revenue codes; this format's lines carry CPT): admission, each further day, discharge.
INPATIENT_SERVICES = {
    "admission": ("99223", "Initial hospital inpatient care, high complexity", 420.00),
    "day": ("99233", "Subsequent hospital inpatient care, high complexity", 190.00),
    "discharge": ("99239", "Hospital discharge day management, more than 30 minutes", 160.00),
}
# the payer's ids of the demo hospitals (demo/inpatient_stays.py), by organization
HOSPITAL_PROVIDER_IDS = {"hosp-a": "PROV_901", "hosp-b": "PROV_902"}
DEFECTS = ("total_mismatch", "wrong_npi", "bad_procedure", "negative_amount", "missing_claim_id")


def _claim(rng: random.Random, number: int, day: date, providers: list[tuple[str, str]]) -> dict:
    lines = []
    for code, description, charge in rng.sample(PROCEDURES, rng.randint(1, 3)):
        units = rng.choice((1, 1, 1, 2))
        lines.append(
            {
                "procedure_code": code,
                "description": description,
                "amount": round(charge * units, 2),
                "units": units,
            }
        )
    provider_id, billing_npi = rng.choice(providers)
    return {
        "claim_id": f"CLM_{number:06d}",
        "patient_id": patient_id(rng),
        "provider_id": provider_id,
        "billing_provider_npi": billing_npi,
        "rendering_provider_npi": npi(rng),
        "service_date": (day - timedelta(days=rng.randrange(0, 14))).isoformat(),
        "services": lines,
        "total_amount": round(sum(line["amount"] for line in lines), 2),
        "insurance_info": {
            "policy_number": f"POL_{rng.randrange(100000, 999999)}",
            "group_number": f"GRP_{rng.randrange(100, 999)}",
            "coverage_type": rng.choice(COVERAGE),
        },
    }


def _institutional_claim(patient: str, part: StayPart, rng: random.Random) -> dict:
    """An institutional claim (type of bill, admission, discharge, discharge status) for one
    part of a demo inpatient stay."""
    last = part.discharged or part.admitted
    days = (last - part.admitted).days
    lines = []
    for kind, units in (("admission", 1), ("day", max(days - 1, 0)), ("discharge", 1)):
        code, description, charge = INPATIENT_SERVICES[kind]
        first_bill = part.type_of_bill[-1] in "12"  # admit through discharge, first interim
        if (
            units
            and (kind != "admission" or first_bill)
            and (kind != "discharge" or part.discharged)
        ):
            lines.append(
                {
                    "procedure_code": code,
                    "description": description,
                    "amount": round(charge * units, 2),
                    "units": units,
                }
            )
    return {
        "claim_id": part.record_id,
        "patient_id": patient,
        "provider_id": HOSPITAL_PROVIDER_IDS[part.hospital.organization_id],
        "billing_provider_npi": part.hospital.npi,
        "rendering_provider_npi": npi(rng),
        "service_date": part.admitted.isoformat(),
        "type_of_bill": part.type_of_bill,
        "admission_date": part.admitted.isoformat(),
        "discharge_date": part.discharged.isoformat() if part.discharged else None,
        "discharge_status": part.disposition,
        "services": lines,
        "total_amount": round(sum(line["amount"] for line in lines), 2),
        "insurance_info": {
            "policy_number": f"POL_{rng.randrange(100000, 999999)}",
            "group_number": f"GRP_{rng.randrange(100, 999)}",
            "coverage_type": "PRIMARY",
        },
    }


def institutional_claims(seed: int = 23) -> list[dict]:
    """The demo inpatient stays' institutional claims (demo/inpatient_stays.py)."""
    rng = random.Random(seed)
    return [_institutional_claim(s.patient_id, part, rng) for s, part in parts("claims")]


def _break(rng: random.Random, claim: dict, defect: str) -> dict:
    if defect == "total_mismatch":
        claim["total_amount"] = round(claim["total_amount"] + 10, 2)
    elif defect == "wrong_npi":
        claim["billing_provider_npi"] = npi(rng, valid=False)
    elif defect == "bad_procedure":
        claim["services"][0]["procedure_code"] = "9921"
    elif defect == "negative_amount":
        claim["services"][0]["amount"] = -claim["services"][0]["amount"]
        claim["total_amount"] = round(sum(line["amount"] for line in claim["services"]), 2)
    elif defect == "missing_claim_id":
        del claim["claim_id"]
    return claim


def write_claims(
    folder: Path,
    files: int = 2,
    claims: int = 100,
    defects_per_file: int = 5,
    first_day: date = date(2024, 3, 15),
    seed: int = 17,
    stays: bool = False,
) -> list[Path]:
    rng = random.Random(seed)
    providers = [(f"PROV_{n:03d}", npi(rng)) for n in range(1, 21)]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(files):
        day = first_day + timedelta(days=index)
        batch = [_claim(rng, index * claims + n, day, providers) for n in range(1, claims + 1)]
        for position, defect in zip(
            rng.sample(range(claims), min(defects_per_file, claims)), DEFECTS * claims, strict=False
        ):
            batch[position] = _break(rng, batch[position], defect)
        if index == 0 and stays:  # the inpatient stays' claims (the demo's: make run) come first
            batch += institutional_claims()
        path = folder / f"claims_{day.isoformat()}_{index + 1:03d}.json"
        write_whole(path, json.dumps(batch, indent=1))
        written.append(path)
    return written


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--claims", type=int, default=100)
    parser.add_argument("--folder", type=Path, default=settings.LANDING_DIR / "claims")
    args = parser.parse_args()
    paths = write_claims(args.folder, files=args.files, claims=args.claims, stays=True)
    log.info("wrote %d claims files to %s", len(paths), args.folder)


if __name__ == "__main__":
    main()
