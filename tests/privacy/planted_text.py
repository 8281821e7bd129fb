"""A clinician's text with a patient in it: the full name and the MRN of a record's own patient,
typed into every free-text field of every source, in a few records of each.

A free-text field is one whose content the sender writes freely, checked by no landing rule: a
description, a department, a ward, a device's status, a payer's coverage type, a trial arm, a
FHIR status, class, unit or code display, and the hospital's own identifiers of providers and
treatments (a name or an MRN fits there as well as anywhere). The registry sends none: its
fields are identifiers, dropped or generalised, or checked at landing (sex, state).

    plant_in_files(landing_dir)            # EHR extracts, claims, device vitals, as written
    plant_in_fhir(resources)               # FHIR Observations and Encounters, before serving
    plant_in_research_db(warehouse)        # the research database's trials

Each returns the (staging relation, column) pairs it filled, which the PHI zone must then hold.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import psycopg

from demo.research_db import DATABASE as RESEARCH_DATABASE
from warehouse.connection import Warehouse

RECORDS = 3  # planted records of each source

EHR_FIELDS = {
    "diagnosis_description": "diagnosis_description",
    "treatment_code": "treatment_code",
    "physician_id": "physician_id",
    "department": "department_name",
}


def _planted(name: str, mrn: str) -> str:
    return f"{name} {mrn}"


def registry_names(landing_dir: Path) -> dict[str, str]:
    """MRN -> full name, from the registry extracts."""
    names = {}
    for path in sorted((landing_dir / "ehr_patients").glob("*.csv")):
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                names[row["patient_id"]] = f"{row['first_name']} {row['last_name']}"
    return names


def plant_in_files(landing_dir: Path) -> set[tuple[str, str]]:
    names = registry_names(landing_dir)
    assert names, "write the registry extract first"
    return (
        _plant_ehr(landing_dir / "ehr", names)
        | _plant_claims(landing_dir / "claims", names)
        | (_plant_vitals(landing_dir / "vitals", names))
    )


def _plant_ehr(folder: Path, names: dict[str, str]) -> set[tuple[str, str]]:
    path = min(folder.glob("*.csv"))
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        columns, rows = reader.fieldnames, list(reader)
    planted = 0
    for row in rows:
        if row["patient_id"] in names and planted < RECORDS:
            for field in EHR_FIELDS:
                row[field] = _planted(names[row["patient_id"]], row["patient_id"])
            planted += 1
    assert planted == RECORDS, path
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, columns)
        writer.writeheader()
        writer.writerows(rows)
    return {("stg_ehr__encounters", column) for column in EHR_FIELDS.values()}


def _plant_claims(folder: Path, names: dict[str, str]) -> set[tuple[str, str]]:
    path = min(folder.glob("*.json"))
    claims = json.loads(path.read_text())
    planted = [claim for claim in claims if claim["patient_id"] in names][:RECORDS]
    assert len(planted) == RECORDS, path
    for claim in planted:
        text = _planted(names[claim["patient_id"]], claim["patient_id"])
        claim["provider_id"] = text
        claim["insurance_info"]["coverage_type"] = text
        for line in claim["services"]:
            line["description"] = text
    path.write_text(json.dumps(claims))
    return {
        ("stg_claims__claims", "provider_id"),
        ("stg_claims__claims", "coverage_type"),
        ("stg_claims__service_lines", "procedure_description"),
    }


def _plant_vitals(folder: Path, names: dict[str, str]) -> set[tuple[str, str]]:
    path = min(folder.glob("*.ndjson"))
    lines, planted = [], 0
    for line in path.read_text().splitlines():
        try:
            reading = json.loads(line)
        except ValueError:
            reading = None  # a defect the demo writes on purpose: left as it is
        if isinstance(reading, dict) and reading.get("patient_id") in names and planted < RECORDS:
            text = _planted(names[reading["patient_id"]], reading["patient_id"])
            reading["device_status"] = text
            reading["location"] = {**reading.get("location", {}), "hospital": text, "ward": text}
            line, planted = json.dumps(reading), planted + 1
        lines.append(line)
    assert planted == RECORDS, path
    path.write_text("\n".join(lines) + "\n")
    return {
        ("stg_vitals__readings", "device_status"),
        ("stg_vitals__readings", "hospital_name"),
        ("stg_vitals__readings", "ward_name"),
    }


def plant_in_fhir(resources: list[dict]) -> set[tuple[str, str]]:
    """Into the Observations and Encounters of the first patients, their own name and MRN."""
    patients = {
        resource["id"]: (
            " ".join([*resource["name"][0]["given"], resource["name"][0]["family"]]),
            next(
                i["value"] for i in resource["identifier"] if i.get("type", {}).get("text") == "MRN"
            ),
        )
        for resource in resources
        if resource["resourceType"] == "Patient"
    }
    counts = {"Observation": 0, "Encounter": 0}
    for resource in resources:
        kind = resource["resourceType"]
        if kind not in counts or counts[kind] >= RECORDS:
            continue
        text = _planted(*patients[resource["subject"]["reference"].removeprefix("Patient/")])
        if kind == "Observation":
            resource["code"]["coding"][0]["display"] = text
            resource["code"]["text"] = text
            resource["status"] = text
            resource["valueQuantity"]["unit"] = text
            resource["valueQuantity"]["code"] = text
        else:
            resource["status"] = text
            resource["class"] = {**resource["class"], "code": text, "display": text}
        counts[kind] += 1
    assert counts == {"Observation": RECORDS, "Encounter": RECORDS}
    return {
        ("stg_fhir__observations", "loinc_display"),
        ("stg_fhir__observations", "observation_status"),
        ("stg_fhir__observations", "ucum_unit"),
        ("stg_fhir__encounters", "encounter_status"),
        ("stg_fhir__encounters", "encounter_class"),
    }


def plant_in_research_db(warehouse: Warehouse, names: dict[str, str]) -> set[tuple[str, str]]:
    """Into the trial arm and completion status of the first trials of registered patients."""
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, RESEARCH_DATABASE)
    ) as conn:
        trials = [
            (trial_id, patient_id)
            for trial_id, patient_id in conn.execute(
                "select trial_id, patient_id from clinical_trials order by trial_id"
            ).fetchall()
            if patient_id in names
        ][:RECORDS]
        assert len(trials) == RECORDS
        for trial_id, patient_id in trials:
            text = _planted(names[patient_id], patient_id)
            conn.execute(
                "update clinical_trials set treatment_arm = %s, completion_status = %s,"
                " updated_at = now() where trial_id = %s",
                (text, text, trial_id),
            )
    return {
        ("stg_research__clinical_trials", "treatment_arm"),
        ("stg_research__clinical_trials", "completion_status"),
    }
