"""The local FHIR server behaves as the EHR APIs the loader must survive: tokens that expire,
paged searchset Bundles, incremental `_lastUpdated`, and 429s and 503s on demand.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests
from fhir.resources.R4B.bundle import Bundle

from demo.fhir_resources import MRN_SYSTEM, demo_resources
from demo.fhir_server import DemoFhirServer, Faults, FhirStore

CLIENT_ID, CLIENT_SECRET = "warehouse-test", "a-test-secret"


@pytest.fixture
def serve():
    servers = []

    def start(faults: Faults | None = None, page_size: int = 20) -> tuple[str, DemoFhirServer]:
        server = DemoFhirServer(
            FhirStore(demo_resources(patients=30)), CLIENT_ID, CLIENT_SECRET, faults, page_size
        )
        servers.append(server)
        return server.start(), server

    yield start
    for server in servers:
        server.stop()


def _token(base: str, secret: str = CLIENT_SECRET) -> requests.Response:
    return requests.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, secret),
        timeout=5,
    )


def _pull_all(base: str, resource_type: str, token: str, after: str | None = None) -> list[dict]:
    url = f"{base}/{resource_type}?_count=20" + (f"&_lastUpdated=gt{after}" if after else "")
    resources = []
    while url:
        response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        response.raise_for_status()
        bundle = response.json()
        Bundle.model_validate(bundle)
        resources += [entry["resource"] for entry in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return resources


def test_a_search_without_a_valid_token_is_refused(serve):
    base, _ = serve()
    assert requests.get(f"{base}/Patient", timeout=5).status_code == 401
    assert _token(base, "wrong").status_code == 401


def test_paging_through_next_links_returns_every_resource_once(serve):
    base, _ = serve()
    token = _token(base).json()["access_token"]
    patients = _pull_all(base, "Patient", token)
    assert len(patients) == 30 == len({p["id"] for p in patients})
    mrns = {i["value"] for p in patients for i in p["identifier"] if i["system"] == MRN_SYSTEM}
    assert mrns == {f"PAT_{10000 + n}" for n in range(30)}
    observations = _pull_all(base, "Observation", token)
    units = Counter(o["valueQuantity"]["code"] for o in observations)
    assert set(units) == {"/min", "Cel", "%"}


def test_last_updated_returns_only_what_changed(serve):
    base, server = serve()
    token = _token(base).json()["access_token"]
    cursor = max(p["meta"]["lastUpdated"] for p in _pull_all(base, "Patient", token))
    assert _pull_all(base, "Patient", token, after=cursor) == []
    server.state.store.update("Patient", "pat-10003", {"gender": "other"})
    changed = _pull_all(base, "Patient", token, after=cursor)
    assert [(p["id"], p["gender"]) for p in changed] == [("pat-10003", "other")]


def test_faults_answer_every_nth_request_with_429_or_503(serve):
    base, _ = serve(Faults(too_many_requests_every=5, unavailable_every=7, retry_after_seconds=2))
    statuses = [_token(base) for _ in range(14)]
    assert [r.status_code for r in statuses].count(429) == 2
    assert statuses[4].status_code == 429 and statuses[4].headers["Retry-After"] == "2"
    assert statuses[6].status_code == 503 and statuses[13].status_code == 503


def test_tokens_expire(serve):
    base, _ = serve(Faults(token_ttl_seconds=0.3))
    asked = time.monotonic()
    token = _token(base).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{base}/Patient", headers=headers, timeout=5).status_code == 200
    while (
        expired := requests.get(f"{base}/Patient", headers=headers, timeout=5)
    ).status_code == 200:
        assert time.monotonic() - asked < 5, "the token did not expire within 5 s"
        time.sleep(0.05)
    assert time.monotonic() - asked >= 0.3  # not before its time
    assert expired.status_code == 401
    assert "invalid_token" in expired.headers["WWW-Authenticate"]
