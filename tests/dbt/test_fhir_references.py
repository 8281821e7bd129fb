"""FHIR references resolved in every form, on a Synthea-style data set served by the demo FHIR API
(demo/synthea_style.py): its urn:uuid subjects and encounters, its conditional references to
practitioners, organizations and locations, and one contained attending; beside them, references
built to resolve to nothing (a missing practitioner, another server, an ambiguous NPI, an
unknown form), which are counted in audit.fhir_reference_counts and the quality report.
Conditions and Procedures are pulled and staged by code system and status."""

from __future__ import annotations

import re
from urllib.parse import quote

import psycopg
import pytest

from demo.fhir_resources import NPI_SYSTEM
from demo.fhir_server import DemoFhirServer, FhirStore
from demo.synthea_style import SNOMED, synthea_style_resources
from ingestion.api_landing import land_fhir
from ingestion.sources.fhir_api import server_key
from tests.ingestion.fhir_pulls import CLIENT_ID, CLIENT_SECRET, FAST

pytestmark = pytest.mark.e2e

RUN_ID = "references"
MISSING_PRACTITIONERS = 12
TWICE_NPI = "9999000001"  # two Practitioners hold it: a conditional reference to it is ambiguous


def _stamp(second: int) -> dict:
    return {"lastUpdated": f"2024-06-02T00:00:{second:02d}.000Z"}


def unresolvable(resources: list[dict], base_url: str) -> list[dict]:
    """Resources whose references resolve to nothing, each in its own way, and a few that do
    in the forms the Synthea-style set does not use (relative to a Synthea id, absolute URL to
    this server, a logical reference by identifier); a Condition entered in error and one coded
    in SNOMED CT only; a Procedure not done."""
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    encounter = next(r for r in resources if r["resourceType"] == "Encounter")
    practitioners = [r for r in resources if r["resourceType"] == "Practitioner"]
    npis = [r["identifier"][0]["value"] for r in practitioners]
    practitioner_ids = [r["id"] for r in practitioners]
    subject = {"reference": f"Patient/{patient['id']}"}
    extra: list[dict] = []

    def encounter_with(encounter_id: str, **elements) -> dict:
        return {
            "resourceType": "Encounter",
            "id": encounter_id,
            "meta": _stamp(len(extra)),
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": subject,
            **elements,
        }

    for number in range(MISSING_PRACTITIONERS):
        extra.append(
            encounter_with(
                f"missing-{number}",
                participant=[{"individual": {"reference": f"Practitioner/gone-{number}"}}],
            )
        )
    extra += [
        encounter_with(
            "elsewhere",
            serviceProvider={"reference": "https://other.example.org/fhir/Organization/1"},
        ),
        encounter_with(
            "ambiguous",
            participant=[
                {"individual": {"reference": f"Practitioner?identifier={NPI_SYSTEM}|{TWICE_NPI}"}}
            ],
        ),
        encounter_with(
            "garbled", participant=[{"individual": {"reference": "see the paper chart"}}]
        ),
        encounter_with(
            "by-identifier",
            participant=[
                {
                    "individual": {
                        "type": "Practitioner",
                        "identifier": {"system": NPI_SYSTEM, "value": npis[1]},
                    }
                }
            ],
            serviceProvider=None,
        ),
        encounter_with(
            "escaped",  # the token percent-encoded, as a URL may carry it
            participant=[
                {
                    "individual": {
                        "reference": "Practitioner?identifier="
                        + quote(f"{NPI_SYSTEM}|{npis[2]}", safe="")
                    }
                }
            ],
        ),
        encounter_with(
            "any-system",  # a bare value: an identifier of any system
            participant=[{"individual": {"reference": f"Practitioner?identifier={npis[3]}"}}],
        ),
        {
            "resourceType": "Observation",
            "id": "practitioner-as-subject",
            "meta": _stamp(39),
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Practitioner/{practitioner_ids[0]}"},
            "encounter": {"reference": f"Encounter/{encounter['id']}/_history/3"},
        },
        *(
            {
                "resourceType": "Practitioner",
                "id": f"same-npi-{copy}",
                "meta": _stamp(40 + copy),
                "identifier": [{"system": NPI_SYSTEM, "value": TWICE_NPI}],
            }
            for copy in (1, 2)
        ),
        {
            "resourceType": "Condition",
            "id": "wrong-subject",
            "meta": _stamp(43),
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]},
            "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"},
            # this very server's URL, its scheme's case changed (the key is normalised)
            "encounter": {"reference": f"HTTP{base_url[4:]}/Encounter/{encounter['id']}"},
        },
        {
            "resourceType": "Condition",
            "id": "entered-in-error",
            "meta": _stamp(44),
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "entered-in-error",
                    }
                ]
            },
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
            "subject": subject,
        },
        {
            "resourceType": "Condition",
            "id": "snomed-only",
            "meta": _stamp(45),
            "code": {"coding": [{"system": SNOMED, "code": "38341003"}]},
            "subject": subject,
        },
        {
            "resourceType": "Procedure",
            "id": "not-done",
            "meta": _stamp(46),
            "status": "not-done",
            "code": {"coding": [{"system": SNOMED, "code": "76601001"}]},
            "subject": subject,
        },
    ]
    for resource in extra:
        if resource.get("serviceProvider", "") is None:
            del resource["serviceProvider"]
    return extra


@pytest.fixture(scope="module")
def built(test_warehouse):
    resources = synthea_style_resources()
    store = FhirStore([])
    server = DemoFhirServer(store, CLIENT_ID, CLIENT_SECRET)
    base_url = server.start()
    try:
        for resource in resources + unresolvable(resources, base_url):
            store.add(resource)
        land_fhir(test_warehouse.warehouse, RUN_ID, base_url, CLIENT_ID, CLIENT_SECRET, policy=FAST)
    finally:
        server.stop()
    result = test_warehouse.dbt(
        "build",
        "--select",
        "+int_fhir_references_resolved",
        "stg_fhir__conditions",
        "stg_fhir__procedures",
        "stg_fhir__encounters",
        "stg_fhir__practitioners",
        "--indirect-selection=cautious",
        build_schema="build_blue",
        run_id=RUN_ID,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    return resources, server_key(base_url)


def query(test_warehouse, statement: str, *params, role: str = "transformer") -> list[tuple]:
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs(role)) as conn:
        return conn.execute(statement, params or None).fetchall()


def outcomes(test_warehouse, resource_id: str) -> list[tuple]:
    return query(
        test_warehouse,
        "select element, reference_form, outcome, target_reference"
        " from intermediate.int_fhir_references_resolved"
        " where fhir_resource_reference like %s order by element, element_position",
        f"%/{resource_id}",
    )


def test_a_conditional_practitioner_reference_joins_its_practitioner_by_npi(test_warehouse, built):
    resources, _ = built
    joined = query(
        test_warehouse,
        """
        select resolved.reference, resolved.outcome, practitioners.npi
        from intermediate.int_fhir_references_resolved as resolved
        left join staging.stg_fhir__practitioners as practitioners
            on resolved.target_reference = practitioners.fhir_practitioner_reference
        where resolved.resource_type = 'Encounter' and resolved.reference_form = 'conditional'
            and resolved.element = 'participant.individual'
            -- the Synthea-style encounters (UUIDs), not those added beside them
            and resolved.fhir_resource_reference ~ '/Encounter/[0-9a-f-]{36}$'
        """,
    )
    synthea_encounters = [r for r in resources if r["resourceType"] == "Encounter"]
    assert len(joined) == len(synthea_encounters)
    for reference, outcome, npi in joined:
        assert outcome == "resolved"
        assert reference == f"Practitioner?identifier={NPI_SYSTEM}|{npi}"


def test_urn_uuid_subjects_and_encounters_resolve_and_reach_staging(test_warehouse, built):
    resources, server = built
    by_outcome = dict(
        query(
            test_warehouse,
            "select outcome, count(*) from intermediate.int_fhir_references_resolved"
            " where reference_form = 'urn_uuid' group by outcome",
        )
    )
    # every Synthea-style Encounter's, Condition's and Procedure's subject, and the latters'
    # encounters; one Condition's subject names a UUID no resource has
    typed = [r for r in resources if r["resourceType"] in ("Encounter", "Condition", "Procedure")]
    with_encounter = [r for r in typed if "encounter" in r]
    assert by_outcome == {"resolved": len(typed) + len(with_encounter), "not_found": 1}
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    encounters = query(
        test_warehouse,
        "select count(*) from staging.stg_fhir__encounters where fhir_patient_reference = %s",
        f"{server}/Patient/{patient['id']}",
    )
    written = [
        r
        for r in resources
        if r["resourceType"] == "Encounter" and r["subject"]["reference"].endswith(patient["id"])
    ]
    # the Synthea-style encounters (urn:uuid) and the added ones (relative)
    added = [r for r in unresolvable(resources, "http://x") if r["resourceType"] == "Encounter"]
    assert encounters[0][0] == len(written) + len(added)


def test_a_contained_practitioner_resolves_with_its_npi(test_warehouse, built):
    resources, server = built
    container = next(r for r in resources if r.get("contained"))
    contained_npi = container["contained"][0]["identifier"][0]["value"]
    found = query(
        test_warehouse,
        """
        select resolved.outcome, resolved.target_reference, practitioners.npi
        from intermediate.int_fhir_references_resolved as resolved
        left join staging.stg_fhir__practitioners as practitioners
            on resolved.target_reference = practitioners.fhir_practitioner_reference
        where resolved.reference_form = 'contained'
        """,
    )
    assert found == [("resolved", f"{server}/Encounter/{container['id']}#attending", contained_npi)]


def test_each_reference_that_resolves_to_nothing_says_why(test_warehouse, built):
    _, server = built
    assert outcomes(test_warehouse, "missing-0")[0] == (
        "participant.individual",
        "relative",
        "not_found",
        None,
    )
    assert ("serviceProvider", "absolute", "other_server", None) in outcomes(
        test_warehouse, "elsewhere"
    )
    assert ("participant.individual", "conditional", "ambiguous", None) in outcomes(
        test_warehouse, "ambiguous"
    )
    assert ("participant.individual", "unrecognised", "unrecognised", None) in outcomes(
        test_warehouse, "garbled"
    )
    by_identifier = outcomes(test_warehouse, "by-identifier")
    assert by_identifier[0][1:3] == ("identifier", "resolved")
    assert outcomes(test_warehouse, "escaped")[0][1:3] == ("conditional", "resolved")
    assert outcomes(test_warehouse, "any-system")[0][1:3] == ("conditional", "resolved")
    # a Practitioner is no subject of an Observation (R4: Patient, Group, Device, Location);
    # a version-specific reference is the resource's
    assert [row[:3] for row in outcomes(test_warehouse, "practitioner-as-subject")] == [
        ("encounter", "relative", "resolved"),
        ("subject", "relative", "wrong_type"),
    ]
    wrong_subject = outcomes(test_warehouse, "wrong-subject")
    assert [row[:3] for row in wrong_subject] == [
        ("encounter", "absolute", "resolved"),  # the server's own URL, its scheme case changed
        ("subject", "urn_uuid", "not_found"),
    ]
    assert wrong_subject[0][3].startswith(f"{server}/Encounter/")


def test_the_counts_are_recorded_and_the_quality_report_shows_them(test_warehouse, built, tmp_path):
    from expectations.report import build_report

    recorded = query(
        test_warehouse,
        "select outcome, sum(reference_count) from audit.fhir_reference_counts"
        " where run_id = %s group by outcome",
        RUN_ID,
        role="steward",
    )
    modelled = query(
        test_warehouse,
        "select outcome, count(*) from intermediate.int_fhir_references_resolved group by outcome",
    )
    assert sorted(recorded) == sorted(modelled)
    assert dict(recorded)["not_found"] == MISSING_PRACTITIONERS + 1
    page = build_report(test_warehouse.warehouse, tmp_path).read_text()
    section = page[page.index('id="fhir-references"') : page.index('id="vitals-processor"')]
    total = sum(count for _, count in modelled)
    assert re.search(rf'id="references-made">{total}<', section)
    # a row for each kind that resolved to nothing: 12 references of a missing practitioner and
    # four kinds of one each (another server, an ambiguous NPI, a garbled reference, an unknown
    # UUID; the wrong subject type too). The ones are small cells, hidden; with the total of those
    # that did not resolve shown, the twelve would give them away (their sum): hidden too
    rows = re.findall(
        r"<td>(\w+)</td><td>([\w.]+)</td><td>(\w+)</td>\s*<td>(\w+)</td>"
        r"<td class=\"number\">(\w+)</td>",
        section,
    )
    expected = query(
        test_warehouse,
        "select resource_type, element, reference_form, outcome from audit.fhir_reference_counts"
        " where run_id = %s and outcome <> 'resolved'",
        RUN_ID,
        role="steward",
    )
    assert sorted(row[:4] for row in rows) == sorted(expected) and len(rows) == 6
    assert {row[4] for row in rows} == {"hidden"}
    unresolved = sum(count for outcome, count in modelled if outcome != "resolved")
    assert re.search(rf'id="references-unresolved">{unresolved}<', section)
    assert re.search(rf'id="references-resolved">{total - unresolved}<', section)


def test_conditions_and_procedures_are_read_by_code_system_and_status(test_warehouse, built):
    resources, _ = built
    conditions = dict(
        query(
            test_warehouse,
            "select fhir_condition_id, icd10cm_code from staging.stg_fhir__conditions",
        )
    )
    written = {
        r["id"]: r["code"]["coding"][1]["code"]
        for r in resources
        if r["resourceType"] == "Condition"
    }
    assert "entered-in-error" not in conditions
    assert conditions.pop("snomed-only") is None
    assert conditions.pop("wrong-subject") == "I10"
    assert conditions == written
    assert "U07.1" in written.values()
    procedures = query(
        test_warehouse,
        "select count(*), count(cpt_code), count(snomed_code) from staging.stg_fhir__procedures",
    )
    synthea = [r for r in resources if r["resourceType"] == "Procedure"]
    with_cpt = [r for r in synthea if len(r["code"]["coding"]) == 2]
    assert procedures == [(len(synthea), len(with_cpt), len(synthea))]  # not-done left out
