"""A FHIR data set shaped as Synthea's bulk export writes it, for the FHIR API: ambulatory (AMB),
emergency (EMER) and inpatient (IMP) Encounters of patients with Conditions and Procedures.

What makes it Synthea's, beside the demo's own FHIR resources (fhir_resources.py):
- every id is a UUID; a Patient's and an Encounter's are referenced as `urn:uuid:<id>` (Synthea
  writes a resource's fullUrl as `urn:uuid:<id>` and references within the patient's record by it);
- practitioners, organizations and locations are referenced conditionally, by identifier:
  `Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974493`,
  `Organization?identifier=https://github.com/synthetichealth/synthea|<uuid>`, as the bulk export
  writes them (its provider files are exported once, apart from the patients);
- Synthea's NPIs start 9999 (they are no real clinician's); SSNs start 999 (never issued);
- Conditions coded in SNOMED CT with an ICD-10-CM coding beside it (what a US EHR's export
  carries; Synthea itself codes SNOMED only); Procedures in SNOMED CT, some with a CPT coding.

An inpatient stay has `hospitalization.dischargeDisposition` in NUBC's patient discharge status
codes (http://www.nubc.org/patient-discharge): home, transfer to another hospital, against medical
advice, died. One practitioner is contained in its Encounter (`#attending`), as an EHR exports a
clinician it has no directory entry for. Every resource passes the R4B models.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from faker import Faker

from demo.fhir_resources import NPI_SYSTEM, SSN_SYSTEM, _stamp, validated

SYNTHEA = "https://github.com/synthetichealth/synthea"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
NUBC_DISCHARGE = "http://www.nubc.org/patient-discharge"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# (class code, SNOMED encounter type, display, share of encounters)
ENCOUNTER_KINDS = [
    ("AMB", "185349003", "Encounter for check up", 0.7),
    ("EMER", "50849002", "Emergency room admission", 0.15),
    ("IMP", "32485007", "Hospital admission", 0.15),
]
# NUBC patient discharge status: code, display, weight among inpatient stays
DISPOSITIONS = [
    ("01", "Discharged to home or self care", 6),
    ("02", "Discharged/transferred to a short-term general hospital for inpatient care", 1),
    ("07", "Left against medical advice or discontinued care", 1),
    ("20", "Expired", 1),
]
# SNOMED CT, ICD-10-CM, display
DIAGNOSES = [
    ("44054006", "E11.9", "Diabetes mellitus type 2"),
    ("59621000", "I10", "Essential hypertension"),
    ("84114007", "I50.9", "Heart failure"),
    ("13645005", "J44.9", "Chronic obstructive lung disease"),
    ("233604007", "J18.9", "Pneumonia"),
    ("840539006", "U07.1", "COVID-19"),
    ("22298006", "I21.9", "Myocardial infarction"),
]
# SNOMED CT, CPT (or None), display
PROCEDURES = [
    ("430193006", "99213", "Medication reconciliation"),
    ("710824005", None, "Assessment of health and social care needs"),
    ("76601001", "33533", "Coronary artery bypass grafting"),
    ("168594001", "71046", "Plain chest X-ray"),
]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _by_identifier(resource_type: str, system: str, value: str) -> dict:
    return {"reference": f"{resource_type}?identifier={system}|{value}"}


def _synthea_npi(rng: random.Random) -> str:
    return "9999" + "".join(str(rng.randrange(10)) for _ in range(6))


def synthea_style_resources(
    patients: int = 30,
    encounters_per_patient: int = 4,
    updated_at: datetime = datetime(2024, 6, 1, 12, 0, tzinfo=UTC),
    seed: int = 147,
) -> list[dict]:
    """A Synthea-style record of `patients` patients, their encounters over the five years
    before `updated_at`, and the providers who saw them."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    tick = iter(range(1_000_000))
    resources: list[dict] = []

    def meta() -> dict:
        return {"lastUpdated": _stamp(updated_at + timedelta(seconds=next(tick)))}

    facilities = []
    for _ in range(2):
        organization_id, location_id = _uuid(rng), _uuid(rng)
        name = f"{fake.last_name()} General Hospital"
        resources.append(
            {
                "resourceType": "Organization",
                "id": organization_id,
                "meta": meta(),
                "identifier": [{"system": SYNTHEA, "value": organization_id}],
                "active": True,
                "name": name,
                "address": [{"city": fake.city(), "state": "MA", "postalCode": fake.zipcode()}],
            }
        )
        resources.append(
            {
                "resourceType": "Location",
                "id": location_id,
                "meta": meta(),
                "identifier": [{"system": SYNTHEA, "value": location_id}],
                "status": "active",
                "name": name,
                "managingOrganization": _by_identifier("Organization", SYNTHEA, organization_id),
            }
        )
        facilities.append((organization_id, location_id))
    clinicians = []
    for _ in range(6):
        clinician_npi = _synthea_npi(rng)
        resources.append(
            {
                "resourceType": "Practitioner",
                "id": _uuid(rng),
                "meta": meta(),
                "identifier": [{"system": NPI_SYSTEM, "value": clinician_npi}],
                "active": True,
                "name": [{"family": fake.last_name(), "given": [fake.first_name()]}],
                "gender": rng.choice(("male", "female")),
            }
        )
        clinicians.append(clinician_npi)
    contained_placed = False
    for _ in range(patients):
        patient_id = _uuid(rng)
        born = updated_at.date() - timedelta(days=rng.randrange(20 * 365, 90 * 365))
        resources.append(
            {
                "resourceType": "Patient",
                "id": patient_id,
                "meta": meta(),
                "identifier": [
                    {"system": SYNTHEA, "value": patient_id},
                    {
                        "system": SSN_SYSTEM,
                        "value": f"999-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}",
                    },
                ],
                "name": [
                    {"use": "official", "family": fake.last_name(), "given": [fake.first_name()]}
                ],
                "gender": rng.choice(("male", "female")),
                "birthDate": born.isoformat(),
                "address": [
                    {
                        "line": [fake.street_address()],
                        "city": fake.city(),
                        "state": "MA",
                        "postalCode": fake.zipcode(),
                    }
                ],
            }
        )
        for _ in range(encounters_per_patient):
            class_code, type_code, type_display, _share = rng.choices(
                ENCOUNTER_KINDS, weights=[k[3] for k in ENCOUNTER_KINDS]
            )[0]
            organization_id, location_id = rng.choice(facilities)
            start = updated_at - timedelta(days=rng.randrange(1, 5 * 365), hours=rng.randrange(24))
            length = (
                timedelta(days=rng.randrange(1, 8), hours=rng.randrange(24))
                if class_code == "IMP"
                else timedelta(minutes=rng.choice((15, 30, 45, 120)))
            )
            encounter_id = _uuid(rng)
            encounter = {
                "resourceType": "Encounter",
                "id": encounter_id,
                "meta": meta(),
                "status": "finished",
                "class": {"system": ACT_CODE, "code": class_code},
                "type": [
                    {"coding": [{"system": SNOMED, "code": type_code, "display": type_display}]}
                ],
                "subject": {"reference": f"urn:uuid:{patient_id}"},
                "participant": [
                    {
                        "type": [{"coding": [{"system": PARTICIPATION, "code": "PPRF"}]}],
                        "individual": _by_identifier(
                            "Practitioner", NPI_SYSTEM, rng.choice(clinicians)
                        ),
                    }
                ],
                "period": {"start": _stamp(start), "end": _stamp(start + length)},
                "location": [{"location": _by_identifier("Location", SYNTHEA, location_id)}],
                "serviceProvider": _by_identifier("Organization", SYNTHEA, organization_id),
            }
            if class_code == "IMP":
                code, display, _ = rng.choices(DISPOSITIONS, weights=[d[2] for d in DISPOSITIONS])[
                    0
                ]
                encounter["hospitalization"] = {
                    "dischargeDisposition": {
                        "coding": [{"system": NUBC_DISCHARGE, "code": code, "display": display}]
                    }
                }
                if not contained_placed:  # an attending the export has no directory entry for
                    contained_placed = True
                    encounter["contained"] = [
                        {
                            "resourceType": "Practitioner",
                            "id": "attending",
                            "identifier": [{"system": NPI_SYSTEM, "value": _synthea_npi(rng)}],
                            "name": [{"family": fake.last_name(), "given": [fake.first_name()]}],
                        }
                    ]
                    encounter["participant"].append(
                        {
                            "type": [{"coding": [{"system": PARTICIPATION, "code": "ATND"}]}],
                            "individual": {"reference": "#attending"},
                        }
                    )
            resources.append(encounter)
            snomed, icd10, display = rng.choice(DIAGNOSES)
            resources.append(
                {
                    "resourceType": "Condition",
                    "id": _uuid(rng),
                    "meta": meta(),
                    "clinicalStatus": {"coding": [{"system": CLINICAL_STATUS, "code": "active"}]},
                    "verificationStatus": {
                        "coding": [{"system": VERIFICATION_STATUS, "code": "confirmed"}]
                    },
                    "category": [
                        {"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}
                    ],
                    "code": {
                        "coding": [
                            {"system": SNOMED, "code": snomed, "display": display},
                            {"system": ICD10CM, "code": icd10, "display": display},
                        ],
                        "text": display,
                    },
                    "subject": {"reference": f"urn:uuid:{patient_id}"},
                    "encounter": {"reference": f"urn:uuid:{encounter_id}"},
                    "onsetDateTime": _stamp(start),
                    "recordedDate": _stamp(start),
                }
            )
            snomed, cpt, display = rng.choice(PROCEDURES)
            codings = [{"system": SNOMED, "code": snomed, "display": display}]
            if cpt:
                codings.append({"system": CPT, "code": cpt})
            resources.append(
                {
                    "resourceType": "Procedure",
                    "id": _uuid(rng),
                    "meta": meta(),
                    "status": "completed",
                    "code": {"coding": codings, "text": display},
                    "subject": {"reference": f"urn:uuid:{patient_id}"},
                    "encounter": {"reference": f"urn:uuid:{encounter_id}"},
                    "performedPeriod": {
                        "start": _stamp(start),
                        "end": _stamp(start + timedelta(minutes=15)),
                    },
                }
            )
    return [validated(resource) for resource in resources]
