"""Pulling the FHIR API: exactly once through 429s, 503s and expiring tokens; only what changed;
a circuit breaker when the API is gone; invalid resources quarantined.
"""

from __future__ import annotations

import time

import pytest

from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, Faults, FhirStore
from ingestion.api_landing import land_fhir
from ingestion.http_client import CircuitOpen
from tests.ingestion.fhir_pulls import CLIENT_ID, CLIENT_SECRET, FAST, rows

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fhir(test_warehouse):
    resources = demo_resources(patients=40)
    server = DemoFhirServer(
        FhirStore(resources),
        CLIENT_ID,
        CLIENT_SECRET,
        Faults(
            too_many_requests_every=5,
            unavailable_every=7,
            token_ttl_seconds=0.15,
            advertised_ttl_seconds=3600,
        ),
        page_size=25,
    )
    base_url = server.start()
    yield server, base_url, resources
    server.stop()


def _pull(test_warehouse, base_url: str, run_id: str):
    return land_fhir(
        test_warehouse.warehouse,
        run_id,
        base_url,
        CLIENT_ID,
        CLIENT_SECRET,
        page_size=25,
        policy=FAST,
    )


@pytest.fixture(scope="module")
def first_pull(test_warehouse, fhir) -> tuple[dict, dict[int, int]]:
    """The first pull of every resource: its pulls by resource type, and what the server answered
    on the way. Every other test pulls after it."""
    server, base_url, _ = fhir
    pulls = _pull(test_warehouse, base_url, "fhir_1")
    return pulls, dict(server.state.answered)


def test_every_resource_lands_exactly_once_through_faults_and_expiring_tokens(
    test_warehouse, fhir, first_pull
):
    _, _, resources = fhir
    pulls, answered = first_pull
    # 429s, 503s, and tokens that died mid-pull (401) were all met on the way
    assert answered.get(429, 0) > 0 and answered.get(503, 0) > 0 and answered.get(401, 0) > 0
    total, distinct = rows(
        test_warehouse,
        "select count(*), count(distinct (resource_type, id)) from raw_fhir.resources",
    )[0]
    assert total == distinct == len(resources)
    assert sum(p.received for p in pulls.values()) == len(resources)
    by_type = dict(
        rows(test_warehouse, "select resource_type, count(*) from raw_fhir.resources group by 1")
    )
    # 80 visits and the inpatient stays of patients under 40 (6 encounters) at the 2 demo hospitals
    assert by_type == {
        "Patient": 40,
        "Practitioner": 10,
        "Organization": 2,
        "Encounter": 86,
        "Observation": 320,
    }


def test_a_second_pull_with_nothing_new_loads_nothing(test_warehouse, fhir, first_pull):
    _, base_url, _ = fhir
    pulls = _pull(test_warehouse, base_url, "fhir_2")
    assert sum(p.received for p in pulls.values()) == 0
    assert rows(
        test_warehouse, "select count(*) from raw_fhir.resources where _pulled_in = 'fhir_2'"
    ) == [(0,)]


def test_updated_resources_are_merged_and_nothing_else_loads(test_warehouse, fhir, first_pull):
    server, base_url, resources = fhir
    server.state.store.update("Patient", "pat-10002", {"gender": "other"})
    server.state.store.update("Encounter", "enc-10005-1", {"status": "cancelled"})
    pulls = _pull(test_warehouse, base_url, "fhir_3")
    assert sum(p.received for p in pulls.values()) == 2
    changed = rows(
        test_warehouse,
        "select resource_type, id, resource->>'gender', resource->>'status' from raw_fhir.resources"
        " where _pulled_in = 'fhir_3' order by 1",
    )
    assert changed == [
        ("Encounter", "enc-10005-1", None, "cancelled"),
        ("Patient", "pat-10002", "other", None),
    ]
    assert rows(test_warehouse, "select count(*) from raw_fhir.resources") == [(len(resources),)]


def test_invalid_resources_go_to_the_shared_quarantine(test_warehouse, fhir, first_pull):
    server, base_url, resources = fhir
    store = server.state.store
    store.add({"resourceType": "Patient", "gender": "female"})  # no id
    store.add({"resourceType": "Patient", "id": "pat-bad-date", "birthDate": "1980-13-45"})
    pulls = _pull(test_warehouse, base_url, "fhir_4")
    assert len(pulls["Patient"].quarantined) == 2
    rules = rows(
        test_warehouse,
        "select rule from quarantine.rejected_records where source = 'fhir' order by rule",
    )
    assert rules == [("resource_fits_r4b_model",), ("resource_has_id",)]
    assert rows(test_warehouse, "select count(*) from raw_fhir.resources") == [(len(resources),)]
    _pull(test_warehouse, base_url, "fhir_5")  # nothing new: nothing quarantined twice
    assert (
        len(rows(test_warehouse, "select 1 from quarantine.rejected_records where source = 'fhir'"))
        == 2
    )


def test_the_client_secret_and_tokens_never_reach_the_logs(
    test_warehouse, fhir, first_pull, caplog
):
    import logging

    server, base_url, _ = fhir
    caplog.set_level(logging.DEBUG)
    server.state.store.update("Patient", "pat-10004", {"gender": "unknown"})
    _pull(test_warehouse, base_url, "fhir_logged")
    assert "new access token" in caplog.text
    assert CLIENT_SECRET not in caplog.text
    assert not any(token in caplog.text for token in server.state.tokens)


def test_the_circuit_opens_when_the_api_is_gone(test_warehouse):
    # a server of its own, gone: the module's server stays up for the other tests
    server = DemoFhirServer(FhirStore(demo_resources(patients=1)), CLIENT_ID, CLIENT_SECRET)
    base_url = server.start()
    server.stop()
    started = time.monotonic()
    with pytest.raises(CircuitOpen) as failure:
        _pull(test_warehouse, base_url, "fhir_gone")
    assert time.monotonic() - started < 30
    message = str(failure.value)
    assert base_url in message and "6 consecutive failed requests" in message


@pytest.mark.parametrize(
    ("resource", "rule"),
    [
        (
            {"resourceType": "Basic", "id": "b-1", "meta": {"lastUpdated": "2024-03-15T12:00:00Z"}},
            "resource_type_known",
        ),
        (
            {"resourceType": "Patient", "meta": {"lastUpdated": "2024-03-15T12:00:00Z"}},
            "resource_has_id",
        ),
        (
            {"resourceType": "Patient", "id": "p-1", "meta": {"lastUpdated": "yesterday"}},
            "meta_last_updated_is_instant",
        ),
        (
            {
                "resourceType": "Patient",
                "id": "p-1",
                "birthDate": "1980-02-30",
                "meta": {"lastUpdated": "2024-03-15T12:00:00Z"},
            },
            "resource_fits_r4b_model",
        ),
        ("not an object", "resource_is_object"),
    ],
)
def test_each_kind_of_invalid_resource_is_named_by_its_rule(resource, rule):
    from ingestion.sources.fhir_api import problem

    found = problem(resource, "Patient")
    assert found is not None and found[0] == rule
    assert "1980-02-30" not in found[1] and "yesterday" not in found[1]
