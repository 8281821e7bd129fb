"""A warehouse whose FHIR resources and cursors predate keying by server keeps both: the first
configured server's pull names them its own (its rows, its cursors), and lands nothing it already
had; another server gets a full pull; and no other server's pull lands beside unnamed resources.

The state before is made as the landing made it then (the same dlt pipeline, resources, table,
merge key and one `cursor` per resource type, no server): `pull_before_servers_were_keyed`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, FhirStore
from ingestion import dlt_pipeline
from ingestion.api_landing import land_fhir
from ingestion.file_source import ReconciliationError
from ingestion.http_client import ApiClient
from ingestion.sources import fhir_api
from tests.ingestion.fhir_pulls import CLIENT_ID, CLIENT_SECRET, FAST, rows

OLDER = datetime(2020, 1, 1, tzinfo=UTC)  # server B's resources: all before A's cursor

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
    pipeline.run([resource_for(t) for t in fhir_api.RESOURCE_TYPES])


@pytest.fixture(scope="module")
def upgraded(test_warehouse):
    """Server A pulled before servers were keyed; then B's pull (refused), A's, B's again."""
    a = DemoFhirServer(FhirStore(demo_resources(patients=4)), CLIENT_ID, CLIENT_SECRET)
    b = DemoFhirServer(
        FhirStore(demo_resources(patients=2, seed=7, updated_at=OLDER)),
        CLIENT_ID,
        CLIENT_SECRET,
    )
    urls = a.start(), b.start()
    warehouse = test_warehouse.warehouse
    pull_before_servers_were_keyed(warehouse, urls[0])
    before = rows(test_warehouse, "select resource_type, id, _dlt_id from raw_fhir.resources")

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
    yield urls, before, str(refused.value), received
    a.stop()
    b.stop()


def test_the_first_servers_resources_and_cursors_are_kept_and_named_its_own(
    test_warehouse, upgraded
):
    (a, _), before, _, received = upgraded
    assert len(before) == len(demo_resources(patients=4))
    # its cursors carried over: nothing pulled again
    assert received["a_1"] == 0
    kept = rows(
        test_warehouse,
        "select resource_type, id, _dlt_id from raw_fhir.resources where server = %s",
        fhir_api.server_key(a),
    )
    assert sorted(kept) == sorted(before)
    cursor_from = rows(
        test_warehouse,
        "select distinct cursor_from is not null from audit.api_pulls where run_id = 'a_1'",
    )
    assert cursor_from == [(True,)]


def test_a_new_server_gets_a_full_pull(test_warehouse, upgraded):
    (_, b), _, _, received = upgraded
    assert received["b_1"] == len(demo_resources(patients=2, seed=7, updated_at=OLDER))
    assert rows(
        test_warehouse,
        "select count(*) from raw_fhir.resources where server = %s",
        fhir_api.server_key(b),
    ) == [(received["b_1"],)]


def test_another_servers_pull_refuses_to_land_beside_unnamed_resources(test_warehouse, upgraded):
    _, before, refused, _ = upgraded
    assert f"holds {len(before)} resources pulled before FHIR servers were keyed" in refused
    assert rows(
        test_warehouse, "select count(*) from audit.api_pulls where run_id = 'b_first'"
    ) == [(0,)]
