"""The demo's inpatient stays: one plan that the FHIR server (demo/fhir_resources.py) and the
claims files (demo/claims_files.py) both draw from, so that a stay arrives from two sources as it
does in a hospital (the EHR's Encounter, the payer's institutional claim), and that every case an
encounter or readmission measure needs is there:

| scenario | FHIR | institutional claims | stays |
| --- | --- | --- | --- |
| home | an IMP Encounter, discharged home | 0111, status 01 | one, from both sources |
| against_advice | - | 0111, status 07 | one |
| died | an IMP Encounter, disposition expired | - | one |
| transfer_within | two IMP Encounters at one hospital, the second (ICU) from the day the first ends | one 0111 for the whole stay | one |
| transfer_out | hospital A, discharged to a short-term hospital (02); hospital B from that day, home | 0111 from each hospital | two, the second a transfer's |
| interim | - | 0112 (first interim bill, status 30 still a patient) then 0114 (last, 01) | one |

Dispositions are NUBC's patient discharge status codes (UB-04 form locator 17), which FHIR
Encounters carry in `hospitalization.dischargeDisposition` with system
http://www.nubc.org/patient-discharge. The hospitals are two Organizations with NPIs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from demo.patients import npi, person

NUBC_DISCHARGE = "http://www.nubc.org/patient-discharge"


@dataclass(frozen=True)
class Hospital:
    organization_id: str
    name: str
    npi: str


_rng = random.Random(2207)
HOSPITALS = (
    Hospital("hosp-a", "Demo General Hospital", npi(_rng)),
    Hospital("hosp-b", "Demo Regional Medical Center", npi(_rng)),
)


@dataclass(frozen=True)
class StayPart:
    """One source's record of (part of) a stay."""

    source: str  # fhir or claims
    record_id: str  # the Encounter's id or the claim's
    hospital: Hospital
    admitted: date
    discharged: date | None
    disposition: str | None  # NUBC code; None while still a patient
    type_of_bill: str | None = None  # claims only


@dataclass(frozen=True)
class Scenario:
    name: str
    patient_number: int  # of demo/patients.py; under 50, so on the demo FHIR server too
    parts: tuple[StayPart, ...]
    stays: int  # how many stays the parts make

    @property
    def patient_id(self) -> str:
        return person(self.patient_number).patient_id


def _scenarios() -> list[Scenario]:
    a, b = HOSPITALS
    day = date(2024, 1, 8)
    died = person(11).death_date  # patient 11 dies (demo/patients.py): in hospital, here

    def at(offset: int) -> date:
        return day + timedelta(days=offset)

    return [
        Scenario(
            "home",
            2,
            (
                StayPart("fhir", "stay-home", a, at(0), at(4), "01"),
                StayPart("claims", "CLM_IP_0001", a, at(0), at(4), "01", "0111"),
            ),
            1,
        ),
        Scenario(
            "against_advice",
            5,
            (StayPart("claims", "CLM_IP_0002", b, at(10), at(12), "07", "0111"),),
            1,
        ),
        Scenario(
            "died", 11, (StayPart("fhir", "stay-died", a, died - timedelta(days=3), died, "20"),), 1
        ),
        Scenario(
            "transfer_within",
            17,
            (
                StayPart("fhir", "stay-ward", a, at(20), at(23), None),
                StayPart("fhir", "stay-icu", a, at(23), at(27), "01"),
                StayPart("claims", "CLM_IP_0003", a, at(20), at(27), "01", "0111"),
            ),
            1,
        ),
        Scenario(
            "transfer_out",
            23,
            (
                StayPart("fhir", "stay-out-a", a, at(30), at(32), "02"),
                StayPart("claims", "CLM_IP_0004", a, at(30), at(32), "02", "0111"),
                StayPart("fhir", "stay-out-b", b, at(32), at(38), "01"),
                StayPart("claims", "CLM_IP_0005", b, at(32), at(38), "01", "0111"),
            ),
            2,
        ),
        Scenario(
            "interim",
            29,
            (
                StayPart("claims", "CLM_IP_0006", b, at(40), None, "30", "0112"),
                StayPart("claims", "CLM_IP_0007", b, at(40), at(55), "01", "0114"),
            ),
            1,
        ),
    ]


SCENARIOS = _scenarios()


def parts(source: str) -> list[tuple[Scenario, StayPart]]:
    """Each scenario's parts that `source` sends, with their scenario."""
    return [(s, part) for s in SCENARIOS for part in s.parts if part.source == source]
