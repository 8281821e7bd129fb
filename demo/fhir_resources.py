"""FHIR R4 demo resources for the same people as the file sources: the MRN is their patient id.

Patients (names, addresses, phone, email, birth date; MRN and SSN identifiers), Practitioners (NPI),
Encounters, and vital-sign Observations coded in LOINC with UCUM units (temperatures in Cel).
Each resource is validated against the FHIR R4B models of `fhir.resources` (it ships no R4
ones; why R4B serves an R4 feed: ingestion/sources/fhir_api.py) before it is served.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from faker import Faker
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.procedure import Procedure

from demo.inpatient_stays import HOSPITALS, NUBC_DISCHARGE, parts
from demo.patients import FIRST_PATIENT, npi, person

MRN_SYSTEM = "urn:healthcare-warehouse:mrn"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
LOINC = "http://loinc.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
UCUM = "http://unitsofmeasure.org"

# LOINC code, display, UCUM unit, typical low, high, decimals
VITAL_SIGNS = [
    ("8867-4", "Heart rate", "/min", 55, 100, 0),
    ("8310-5", "Body temperature", "Cel", 36.1, 37.5, 1),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 94, 100, 0),
    ("9279-1", "Respiratory rate", "/min", 12, 20, 0),
]

MODELS = {
    "Patient": Patient,
    "Practitioner": Practitioner,
    "Encounter": Encounter,
    "Observation": Observation,
    "Organization": Organization,
    "Location": Location,
    "Condition": Condition,
    "Procedure": Procedure,
}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validated(resource: dict) -> dict:
    """The resource as JSON, after the R4B model has accepted it."""
    MODELS[resource["resourceType"]].model_validate(resource)
    return resource


def demo_resources(
    patients: int = 50,
    practitioners: int = 10,
    encounters_per_patient: int = 2,
    updated_at: datetime = datetime(2024, 3, 15, 12, 0, tzinfo=UTC),
    seed: int = 29,
    history_years: int = 0,
    stays: bool = True,
) -> list[dict]:
    """Resources for demo patients 0 .. `patients` - 1. Their encounters fall in the 90 days before
    `updated_at`; with `history_years`, anywhere in that many years before it (never before the
    patient's birth), as a record pulled from a server with decades of history (Synthea's, say)
    would. With `stays`, the demo hospitals (Organizations with NPIs) and the inpatient stays
    of demo/inpatient_stays.py that these patients have: IMP Encounters with their discharge
    disposition and hospital."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    resources: list[dict] = []
    tick = iter(range(1_000_000))

    def meta() -> dict:
        return {"lastUpdated": _stamp(updated_at + timedelta(seconds=next(tick)))}

    doctor_ids = []
    for number in range(1, practitioners + 1):
        doctor_id = f"prac-{number:03d}"
        doctor_ids.append(doctor_id)
        resources.append(
            {
                "resourceType": "Practitioner",
                "id": doctor_id,
                "meta": meta(),
                "identifier": [{"system": NPI_SYSTEM, "value": npi(rng)}],
                "name": [
                    {"family": fake.last_name(), "given": [fake.first_name()], "prefix": ["Dr."]}
                ],
            }
        )
    for number in range(patients):
        someone = person(number)
        patient_id = f"pat-{FIRST_PATIENT + number}"
        patient = {
            "resourceType": "Patient",
            "id": patient_id,
            "meta": meta(),
            "identifier": [
                {"system": MRN_SYSTEM, "value": someone.patient_id, "type": {"text": "MRN"}},
                {"system": SSN_SYSTEM, "value": someone.ssn},
            ],
            "name": [{"family": someone.family_name, "given": [someone.given_name]}],
            "gender": someone.sex,
            "birthDate": someone.birth_date.isoformat(),
            "telecom": [
                {"system": "phone", "value": someone.phone, "use": "home"},
                {"system": "email", "value": someone.email},
            ],
            "address": [
                {
                    "line": [someone.street_address],
                    "city": someone.city,
                    "state": someone.state,
                    "postalCode": someone.zip_code,
                }
            ],
        }
        if someone.death_date:
            patient["deceasedDateTime"] = someone.death_date.isoformat()
        resources.append(patient)
        for visit in range(encounters_per_patient):
            encounter_id = f"enc-{FIRST_PATIENT + number}-{visit + 1}"
            if history_years:
                born = datetime.combine(someone.birth_date, datetime.min.time(), tzinfo=UTC)
                span = min(history_years * 365, (updated_at - born).days - 1)
                start = updated_at - timedelta(
                    days=rng.randrange(1, max(span, 2)), hours=rng.randrange(24)
                )
            else:
                start = updated_at - timedelta(days=rng.randrange(1, 90), hours=rng.randrange(24))
            resources.append(
                {
                    "resourceType": "Encounter",
                    "id": encounter_id,
                    "meta": meta(),
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                    },
                    "subject": {"reference": f"Patient/{patient_id}"},
                    "participant": [
                        {"individual": {"reference": f"Practitioner/{rng.choice(doctor_ids)}"}}
                    ],
                    "period": {
                        "start": _stamp(start),
                        "end": _stamp(start + timedelta(minutes=30)),
                    },
                }
            )
            for code, display, unit, low, high, decimals in VITAL_SIGNS:
                value = round(rng.uniform(low, high), decimals)
                resources.append(
                    {
                        "resourceType": "Observation",
                        "id": f"obs-{FIRST_PATIENT + number}-{visit + 1}-{code}",
                        "meta": meta(),
                        "status": "final",
                        "category": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                        "code": "vital-signs",
                                    }
                                ]
                            }
                        ],
                        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                        "subject": {"reference": f"Patient/{patient_id}"},
                        "encounter": {"reference": f"Encounter/{encounter_id}"},
                        "effectiveDateTime": _stamp(start + timedelta(minutes=5)),
                        "valueQuantity": {
                            "value": value,
                            "unit": unit,
                            "system": UCUM,
                            "code": unit,
                        },
                    }
                )
    if stays:
        resources += _inpatient_stays(patients, meta, rng.choice(doctor_ids))
    return [validated(resource) for resource in resources]


def _inpatient_stays(patients: int, meta, attending: str) -> list[dict]:
    """The demo hospitals and the IMP Encounters of the demo stays of patients 0 .. `patients`-1."""
    hospitals = [
        {
            "resourceType": "Organization",
            "id": hospital.organization_id,
            "meta": meta(),
            "identifier": [{"system": NPI_SYSTEM, "value": hospital.npi}],
            "active": True,
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                            "code": "prov",
                        }
                    ]
                }
            ],
            "name": hospital.name,
        }
        for hospital in HOSPITALS
    ]
    encounters = []
    for scenario, part in parts("fhir"):
        if scenario.patient_number >= patients:
            continue
        admitted = datetime.combine(part.admitted, datetime.min.time(), tzinfo=UTC)
        discharged = datetime.combine(part.discharged, datetime.min.time(), tzinfo=UTC)
        encounter = {
            "resourceType": "Encounter",
            "id": part.record_id,
            "meta": meta(),
            "status": "finished",
            "class": {"system": ACT_CODE, "code": "IMP"},
            "subject": {"reference": f"Patient/pat-{FIRST_PATIENT + scenario.patient_number}"},
            "participant": [
                {
                    "type": [{"coding": [{"system": PARTICIPATION, "code": "ATND"}]}],
                    "individual": {"reference": f"Practitioner/{attending}"},
                }
            ],
            "period": {
                "start": _stamp(admitted + timedelta(hours=10)),
                "end": _stamp(discharged + timedelta(hours=11)),
            },
            "serviceProvider": {"reference": f"Organization/{part.hospital.organization_id}"},
        }
        if part.disposition:
            encounter["hospitalization"] = {
                "dischargeDisposition": {
                    "coding": [{"system": NUBC_DISCHARGE, "code": part.disposition}]
                }
            }
        encounters.append(encounter)
    return hospitals + encounters
