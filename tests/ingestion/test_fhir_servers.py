"""Two FHIR servers pulled side by side: each has its own cursors, its resources are keyed by it,
and a server never pulled before is pulled in full, however far another server's cursor is.

Server A holds the demo resources (updated in 2024); server B, pulled after A, holds a few
resources all updated years before A's cursor, one of them with the same id as one of A's."""

from __future__ import annotations

import psycopg
import pytest

from demo.fhir_resources import demo_resources
from demo.fhir_server import DemoFhirServer, FhirStore
from ingestion.api_landing import land_fhir
from ingestion.sources.fhir_api import server_key
from tests.ingestion.fhir_pulls import CLIENT_ID, CLIENT_SECRET, FAST, rows

SHARED_ID = "pat-10001"  # a Patient on both servers: two facilities' patients, not one

pytestmark = pytest.mark.e2e


def older_resources() -> list[dict]:
    """Server B's: Patients updated in 2019, one with an id server A also holds."""
    return [
        {
            "resourceType": "Patient",
            "id": patient_id,
            "meta": {"lastUpdated": f"2019-06-0{day}T08:00:00Z"},
            "gender": "female",
            "birthDate": f"1950-01-0{day}",
        }
        for day, patient_id in enumerate((SHARED_ID, "b-pat-2", "b-pat-3"), start=1)
    ]


@pytest.fixture(scope="module")
def servers():
    a = DemoFhirServer(FhirStore(demo_resources(patients=5)), CLIENT_ID, CLIENT_SECRET)
    b = DemoFhirServer(FhirStore(older_resources()), CLIENT_ID, CLIENT_SECRET)
    urls = a.start(), b.start()
    yield urls
    a.stop()
    b.stop()


def _pull(test_warehouse, base_url: str, run_id: str) -> int:
    pulls = land_fhir(
        test_warehouse.warehouse, run_id, base_url, CLIENT_ID, CLIENT_SECRET, policy=FAST
    )
    return sum(pull.received for pull in pulls.values())


@pytest.fixture(scope="module")
def pulled(test_warehouse, servers) -> dict[str, int]:
    """A, then B, then both again: what each pull received."""
    a, b = servers
    return {
        run_id: _pull(test_warehouse, url, run_id)
        for run_id, url in (("a_1", a), ("b_1", b), ("a_2", a), ("b_2", b))
    }


def test_a_server_never_pulled_lands_every_resource_though_older_than_anothers_cursor(
    test_warehouse, servers, pulled
):
    _, b = servers
    assert pulled["a_1"] == len(demo_resources(patients=5))
    assert pulled["b_1"] == len(older_resources())
    landed = rows(
        test_warehouse,
        "select id from raw_fhir.resources where server = %s order by id",
        server_key(b),
    )
    assert [row[0] for row in landed] == sorted(r["id"] for r in older_resources())
    # B's pull started with no cursor, A's stayed where it was
    cursors = dict(
        rows(
            test_warehouse,
            "select server, cursor_from from audit.api_pulls"
            " where run_id = 'b_1' and resource_type = 'Patient'",
        )
    )
    assert cursors == {server_key(b): None}


def test_pulling_both_again_lands_nothing_new(test_warehouse, pulled):
    assert pulled["a_2"] == pulled["b_2"] == 0
    assert rows(
        test_warehouse,
        "select count(*) from raw_fhir.resources where _pulled_in in ('a_2', 'b_2')",
    ) == [(0,)]


def test_the_same_id_on_two_servers_lands_twice_once_per_server(test_warehouse, servers, pulled):
    a, b = servers
    shared = rows(
        test_warehouse,
        "select server, resource->>'birthDate' from raw_fhir.resources"
        " where resource_type = 'Patient' and id = %s order by server",
        SHARED_ID,
    )
    assert sorted(server for server, _ in shared) == sorted([server_key(a), server_key(b)])
    # each server's own version: B's is not A's
    assert len({birth_date for _, birth_date in shared}) == 2


def test_each_pull_is_reconciled_in_the_audit_with_its_server_named(
    test_warehouse, servers, pulled
):
    a, b = servers
    audited = rows(
        test_warehouse,
        "select run_id, server, sum(rows_received), sum(rows_loaded) from audit.api_pulls"
        " where source = 'fhir' and run_id in ('a_1', 'a_2', 'b_1', 'b_2')"
        " group by 1, 2 order by 1",
    )
    assert audited == [
        ("a_1", server_key(a), pulled["a_1"], pulled["a_1"]),
        ("a_2", server_key(a), 0, 0),
        ("b_1", server_key(b), pulled["b_1"], pulled["b_1"]),
        ("b_2", server_key(b), 0, 0),
    ]


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("HTTPS://Fhir.Example.org:443/r4/", "https://fhir.example.org/r4"),
        ("http://127.0.0.1:8090/fhir?x=1#top", "http://127.0.0.1:8090/fhir"),
        ("http://fhir.example.org:80", "http://fhir.example.org"),
        ("https://fhir.example.org:8443/R4", "https://fhir.example.org:8443/R4"),
    ],
)
def test_a_servers_key_is_its_base_url_normalised(url, key):
    assert server_key(url) == key


@pytest.mark.parametrize("url", ["fhir.example.org/r4", "ftp://fhir.example.org", ""])
def test_a_base_url_that_is_no_http_url_is_refused(url):
    with pytest.raises(ValueError, match="http"):
        server_key(url)


@pytest.fixture(scope="module")
def changed_server(test_warehouse, servers, pulled):
    """Server A's address now answered by another server, holding one Patient from 2019 and
    nothing else (a server swapped or restored from an old backup): pulled as A."""
    a, _ = servers
    other = DemoFhirServer(FhirStore(older_resources()[:1]), CLIENT_ID, CLIENT_SECRET)
    url = other.start()
    try:
        for run_id in ("a_changed", "a_changed_again"):
            land_fhir(
                test_warehouse.warehouse,
                run_id,
                url,
                CLIENT_ID,
                CLIENT_SECRET,
                policy=FAST,
                server=server_key(a),
            )
    finally:
        other.stop()
    return server_key(a)


def test_a_changed_server_is_a_warning_in_the_audit_the_summary_and_the_report(
    test_warehouse, changed_server, tmp_path
):
    from cli.summary import render, summarize
    from expectations.report import build_report

    warnings = dict(
        rows(
            test_warehouse,
            "select resource_type, warning from audit.api_pulls where run_id = 'a_changed'",
        )
    )
    # it holds one Patient, older than the cursor, where A held 5; of the other types, none
    assert "the server holds 1 Patient, fewer than the 5 at its last pull" in warnings["Patient"]
    assert (
        "is newer than any Patient the server holds (its newest: 2019-06-01" in warnings["Patient"]
    )
    assert all(
        "newer than any" in warnings[t] for t in ("Practitioner", "Encounter", "Observation")
    )
    # the same server again, nothing new: no warning; nor the changed one again, unchanged since
    assert rows(
        test_warehouse,
        "select count(*) from audit.api_pulls where warning is not null"
        " and run_id in ('a_2', 'b_2', 'a_changed_again')",
    ) == [(0,)]
    summary = render(summarize(test_warehouse.warehouse, ["a_changed"]), test_warehouse.warehouse)
    assert any(
        line.split()[0] == "WARNING:" and f"{changed_server} Patient: the cursor" in line
        for line in summary.splitlines()
        if line.strip()
    )
    page = build_report(test_warehouse.warehouse, tmp_path).read_text()
    assert "Sources that changed" in page and changed_server in page


def test_staging_keeps_both_and_each_is_a_patient_of_its_own(test_warehouse, servers, pulled):
    """Staging carries each server's Patient of the shared id, referenced by its server; identity
    resolution and the locked crosswalk tell them apart: two patients, two surrogate keys."""
    a, b = servers
    built = test_warehouse.dbt(
        "build",
        "--select",
        "+int_patients_keyed",
        "+identifier_crosswalk",
        "--indirect-selection=cautious",  # no test of a model left out
        build_schema="build_blue",
        run_id="servers",
    )
    assert built.returncode == 0, built.stdout[-3000:]
    # A's and B's (another test's server may hold the id too)
    references = sorted(f"{server_key(url)}/Patient/{SHARED_ID}" for url in (a, b))
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("transformer")) as conn:
        kept = conn.execute(
            "select fhir_server, fhir_patient_reference from staging.stg_fhir__patients"
            " where fhir_patient_reference = any(%s) order by 2",
            (references,),
        ).fetchall()
        keys = conn.execute(
            "select crosswalk.patient_key"
            " from intermediate.int_patient_identities_resolved as identities"
            " join crosswalk.patient_crosswalk as crosswalk using (patient_id)"
            " where identities.source_name = 'fhir'"
            " and identities.source_patient_reference = any(%s)",
            (references,),
        ).fetchall()
    assert kept == [(reference.rsplit("/Patient/", 1)[0], reference) for reference in references]
    assert len(keys) == 2 and len(set(keys)) == 2


def test_a_check_that_cannot_be_made_is_a_warning_and_the_pull_stands(
    test_warehouse, servers, pulled, monkeypatch
):
    from ingestion.http_client import CircuitOpen
    from ingestion.sources import fhir_api

    def unreachable(*_):
        raise CircuitOpen("FHIR API: circuit open after 6 consecutive failed requests")

    monkeypatch.setattr(fhir_api, "newest_and_total", unreachable)
    a, _ = servers
    assert _pull(test_warehouse, a, "a_unchecked") == 0
    warnings = dict(
        rows(
            test_warehouse,
            "select resource_type, warning from audit.api_pulls where run_id = 'a_unchecked'",
        )
    )
    # the types A holds were checked; of those it has never held any (Condition, ...), every
    # pull is a full one, which needs no check
    held = {resource["resourceType"] for resource in demo_resources(patients=5)}
    assert warnings == {
        t: f"its newest {t} and total could not be read (CircuitOpen)" if t in held else None
        for t in fhir_api.RESOURCE_TYPES
    }


def test_a_pull_whose_load_never_finished_is_aborted_and_pulled_again(
    test_warehouse, pulled, monkeypatch
):
    """A pull that dlt extracted but never loaded (the warehouse went away mid-pull) leaves a
    pending package; the next pull must not load it unrecorded and pull nothing."""
    from dlt.pipeline.pipeline import Pipeline

    resources = demo_resources(patients=1, practitioners=1, seed=11)
    server = DemoFhirServer(FhirStore(resources), CLIENT_ID, CLIENT_SECRET)
    url = server.start()
    try:
        with monkeypatch.context() as crash:

            def load_that_never_finishes(*_, **__):
                raise ConnectionError("the warehouse went away")

            crash.setattr(Pipeline, "load", load_that_never_finishes)
            with pytest.raises(ConnectionError):
                _pull(test_warehouse, url, "d_crashed")
        received = _pull(test_warehouse, url, "d_again")
    finally:
        server.stop()
    assert received == len(resources)
    assert rows(
        test_warehouse,
        "select _pulled_in, count(*) from raw_fhir.resources where server = %s group by 1",
        server_key(url),
    ) == [("d_again", len(resources))]
    assert rows(
        test_warehouse,
        "select sum(rows_received), sum(rows_loaded) from audit.api_pulls where server = %s",
        server_key(url),
    ) == [(len(resources), len(resources))]
