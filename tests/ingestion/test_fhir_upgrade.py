"""A warehouse whose FHIR resources and cursors predate keying by server keeps both: the first
configured server's pull names them its own (its rows, its cursors), and lands nothing it already
had; another server gets a full pull; and no other server's pull lands beside unnamed resources.

The state before is made as the landing made it then (the same dlt pipeline, resources, table,
merge key and one `cursor` per resource type, no server): `pull_before_servers_were_keyed`; and
as the build then keyed it in the locked crosswalk (bare FHIR ids): `keyed_before_servers_were_keyed`.
After the upgrade every key and anchor assigned then is what the de-identified layer publishes for
the same record, and server B's records of the same ids are records and patients of their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest

from demo import fhir_resources
from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, FhirStore
from ingestion import dlt_pipeline
from ingestion.api_landing import land_fhir
from ingestion.file_source import ReconciliationError
from ingestion.http_client import ApiClient
from ingestion.sources import fhir_api
from tests.ingestion.fhir_pulls import CLIENT_ID, CLIENT_SECRET, FAST, rows
from warehouse.dbt_runner import DbtInvocation

OLDER = datetime(2020, 1, 1, tzinfo=UTC)  # server B's resources: all before A's cursor
# what a pull landed before servers were keyed (the types pulled since, Condition and the others,
# came with keyed servers)
TYPES_PULLED_THEN = ("Patient", "Practitioner", "Encounter", "Observation")
# the servers hold the demo of then: its visits, without the inpatient stays added since

pytestmark = pytest.mark.e2e


def pull_before_servers_were_keyed(warehouse, base_url: str) -> None:
    """The FHIR landing before servers were keyed (ingestion/api_landing.py at 8ea1272), in
    what it left behind: rows merged on (resource_type, id), a `cursor` per resource state."""
    import dlt

    client = ApiClient("FHIR API", f"{base_url}/oauth2/token", CLIENT_ID, CLIENT_SECRET, FAST)

    def resource_for(resource_type: str):
        def rows():
            state = dlt.current.resource_state()
            pull = fhir_api.TypePull()
            landed = list(
                fhir_api.pull_type(client, base_url, resource_type, state.get("cursor"), 100, pull)
            )
            for row in landed:
                row["_pulled_in"] = "before"
            yield landed
            state["cursor"] = max(row["last_updated"] for row in landed)

        return dlt.resource(
            rows,
            name=f"fhir_{resource_type.lower()}",
            table_name=fhir_api.TABLE,
            write_disposition="merge",
            primary_key=["resource_type", "id"],
            columns={
                "resource": {"data_type": "json"},
                "last_updated": {"data_type": "timestamp"},
            },
        )

    pipeline = dlt_pipeline.pipeline("fhir_api", fhir_api.DATASET, warehouse)
    pipeline.run([resource_for(t) for t in TYPES_PULLED_THEN])


def without_mrn(resources: list[dict], patient_ids: set[str]) -> list[dict]:
    """The resources, those Patients without their MRN identifier: patients of their own."""
    for resource in resources:
        if resource["resourceType"] == "Patient" and resource["id"] in patient_ids:
            resource["identifier"] = [
                i for i in resource["identifier"] if i["system"] != fhir_resources.MRN_SYSTEM
            ]
    return resources


def keyed_before_servers_were_keyed(test_warehouse) -> None:
    """What the locked crosswalk held for those resources when the build keyed FHIR records by
    id alone (dbt_project/models/deidentified/crosswalk at 95adab5): a random key per Encounter and
    Observation id, per Patient without an MRN (`FHIR:<id>`), and that patient's anchor."""
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        conn.execute(
            """
            insert into crosswalk.identifier_crosswalk
            select case resource_type when 'Encounter' then 'fhir_encounter'
                else 'fhir_observation' end, id, gen_random_uuid(), now()
            from raw_fhir.resources where resource_type in ('Encounter', 'Observation')
            """
        )
        conn.execute(
            """
            insert into crosswalk.patient_crosswalk
            select 'FHIR:' || id, gen_random_uuid(), now()
            from raw_fhir.resources
            where resource_type = 'Patient' and not resource::text like %s
            """,
            (f"%{fhir_resources.MRN_SYSTEM}%",),
        )
        conn.execute(
            """
            insert into crosswalk.patient_anchors
            select patient_id, timestamptz '2024-01-02 03:00:00+00', now()
            from crosswalk.patient_crosswalk where patient_id like 'FHIR:%'
            """
        )


def crosswalk_keys(test_warehouse) -> dict[str, set[tuple]]:
    """The locked crosswalk's FHIR rows: identifiers with their keys, patients with theirs and
    their anchors."""
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        return {
            "identifiers": set(
                conn.execute(
                    "select identifier_type, identifier, surrogate_key"
                    " from crosswalk.identifier_crosswalk where identifier_type like 'fhir_%'"
                )
            ),
            "patients": set(
                conn.execute(
                    "select patient_id, patient_key, anchor_at from crosswalk.patient_crosswalk"
                    " join crosswalk.patient_anchors using (patient_id)"
                    " where patient_id like 'FHIR:%'"
                )
            ),
        }


@dataclass
class Upgrade:
    urls: tuple[str, str]  # server A's, B's
    before: list[tuple]  # raw resources pulled before servers were keyed
    refused: str  # B's pull before A's
    received: dict[str, int]  # by pull
    keys_before: dict[str, set[tuple]]  # crosswalk_keys before
    unowned: DbtInvocation  # a crosswalk build before A's pull
    built: DbtInvocation  # the build after A's and B's pulls
    keys_after: dict[str, set[tuple]]


A_WITHOUT_MRN = {"pat-10001", "pat-10002"}  # patients of their own at A; B holds the same ids
B_WITHOUT_MRN = {"pat-10001"}
CROSSWALK_AND_FHIR = ("+patient_crosswalk", "+patient_anchors", "+identifier_crosswalk")
DEIDENTIFIED_FHIR = ("+deid_fhir_encounters", "+deid_fhir_observations")


@pytest.fixture(scope="module")
def upgraded(test_warehouse):
    """Server A pulled and keyed before servers were keyed; then B's pull (refused), a crosswalk
    build (refused), A's pull, B's, and the build."""
    a = DemoFhirServer(
        FhirStore(without_mrn(demo_resources(patients=4, stays=False), A_WITHOUT_MRN)),
        CLIENT_ID,
        CLIENT_SECRET,
    )
    b = DemoFhirServer(
        FhirStore(
            without_mrn(
                demo_resources(patients=2, seed=7, updated_at=OLDER, stays=False), B_WITHOUT_MRN
            )
        ),
        CLIENT_ID,
        CLIENT_SECRET,
    )
    urls = a.start(), b.start()
    warehouse = test_warehouse.warehouse

    def dbt(command: str, *selected: str):
        return test_warehouse.dbt(
            command,
            "--select",
            *selected,
            "--indirect-selection=cautious",
            build_schema="build_blue",
            run_id="upgrade",
        )

    assert dbt("run", *CROSSWALK_AND_FHIR).returncode == 0  # the crosswalk's tables, empty
    pull_before_servers_were_keyed(warehouse, urls[0])
    keyed_before_servers_were_keyed(test_warehouse)
    before = rows(test_warehouse, "select resource_type, id, _dlt_id from raw_fhir.resources")
    keys_before = crosswalk_keys(test_warehouse)
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as conn:
        # migration 0002 adds it to a warehouse that holds the table when upgraded
        conn.execute("alter table raw_fhir.resources add column server text")
    unowned = dbt("run", "identifier_crosswalk")

    def pull(url: str, run_id: str, owner: bool):
        pulls = land_fhir(
            warehouse,
            run_id,
            url,
            CLIENT_ID,
            CLIENT_SECRET,
            policy=FAST,
            owns_unkeyed_pulls=owner,
        )
        return sum(p.received for p in pulls.values())

    with pytest.raises(ReconciliationError) as refused:
        pull(urls[1], "b_first", owner=False)
    received = {"a_1": pull(urls[0], "a_1", owner=True), "b_1": pull(urls[1], "b_1", owner=False)}
    built = dbt("build", *DEIDENTIFIED_FHIR)
    yield Upgrade(
        urls,
        before,
        str(refused.value),
        received,
        keys_before,
        unowned,
        built,
        crosswalk_keys(test_warehouse),
    )
    a.stop()
    b.stop()


def test_the_first_servers_resources_and_cursors_are_kept_and_named_its_own(
    test_warehouse, upgraded
):
    a, _ = upgraded.urls
    assert len(upgraded.before) == len(demo_resources(patients=4, stays=False))
    # its cursors carried over: nothing pulled again
    assert upgraded.received["a_1"] == 0
    kept = rows(
        test_warehouse,
        "select resource_type, id, _dlt_id from raw_fhir.resources where server = %s",
        fhir_api.server_key(a),
    )
    assert sorted(kept) == sorted(upgraded.before)
    cursor_from = rows(
        test_warehouse,
        "select distinct cursor_from is not null from audit.api_pulls where run_id = 'a_1'"
        " and resource_type = any(%s)",
        list(TYPES_PULLED_THEN),
    )
    assert cursor_from == [(True,)]  # the types pulled since start from none: full pulls
    assert rows(test_warehouse, "select server, resources from audit.fhir_unkeyed_owner") == [
        (fhir_api.server_key(a), len(upgraded.before))
    ]


def test_a_new_server_gets_a_full_pull(test_warehouse, upgraded):
    _, b = upgraded.urls
    assert upgraded.received["b_1"] == len(
        demo_resources(patients=2, seed=7, updated_at=OLDER, stays=False)
    )
    assert rows(
        test_warehouse,
        "select count(*) from raw_fhir.resources where server = %s",
        fhir_api.server_key(b),
    ) == [(upgraded.received["b_1"],)]


def test_another_servers_pull_refuses_to_land_beside_unnamed_resources(test_warehouse, upgraded):
    assert (
        f"holds {len(upgraded.before)} resources pulled before FHIR servers were keyed"
        in upgraded.refused
    )
    assert rows(
        test_warehouse, "select count(*) from audit.api_pulls where run_id = 'b_first'"
    ) == [(0,)]


def test_a_crosswalk_build_refuses_bare_ids_no_server_named_its_own(upgraded):
    assert upgraded.unowned.returncode == 1
    assert (
        "holds FHIR identifiers from before FHIR servers were keyed, and no server has named"
        " them its own" in upgraded.unowned.stdout
    )


def test_every_key_and_anchor_assigned_before_is_kept_for_the_first_servers_records(upgraded):
    """The crosswalk's bare ids are A's references now, each with the key and anchor it had."""
    assert upgraded.built.returncode == 0, upgraded.built.stdout[-3000:]
    a = fhir_api.server_key(upgraded.urls[0])
    kind = {"fhir_encounter": "Encounter", "fhir_observation": "Observation"}
    assert upgraded.keys_before["identifiers"]
    assert {
        (kind_, f"{a}/{kind[kind_]}/{identifier}", key)
        for kind_, identifier, key in upgraded.keys_before["identifiers"]
    } <= upgraded.keys_after["identifiers"]
    assert len(upgraded.keys_before["patients"]) == len(A_WITHOUT_MRN)
    assert {
        (f"FHIR:{a}/Patient/{patient_id.removeprefix('FHIR:')}", key, anchor)
        for patient_id, key, anchor in upgraded.keys_before["patients"]
    } <= upgraded.keys_after["patients"]
    assert not any("/" not in i for _, i, _ in upgraded.keys_after["identifiers"])


def test_the_de_identified_layer_publishes_the_keys_of_before_and_new_ones_for_b(
    test_warehouse, upgraded
):
    """A's encounters keep their keys and their patients'; B's encounters of the same ids, and
    B's Patient without an MRN of one of A's ids, are records and a patient of their own."""
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        published = set(
            conn.execute(
                "select fhir_encounter_key, patient_key from build_blue.deid_fhir_encounters"
            )
        )
    before = {key for _, _, key in upgraded.keys_before["identifiers"]}
    encounters = {"a": 4 * 2, "b": 2 * 2}  # two per patient
    assert len(published) == encounters["a"] + encounters["b"]
    assert len({key for key, _ in published} & before) == encounters["a"]
    a, b = (fhir_api.server_key(url) for url in upgraded.urls)
    patients = {patient_id: key for patient_id, key, _ in upgraded.keys_after["patients"]}
    assert set(patients) == {
        *(f"FHIR:{a}/Patient/{i}" for i in A_WITHOUT_MRN),
        *(f"FHIR:{b}/Patient/{i}" for i in B_WITHOUT_MRN),
    }
    assert set(patients.values()) <= {patient for _, patient in published}
    assert len(set(patients.values())) == len(patients)
