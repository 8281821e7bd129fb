"""A small local FHIR R4 server for the demo and the tests, behaving as real EHR APIs do.

    python -m demo.fhir_server --port 8090

- OAuth2 client credentials: `POST /oauth2/token` (HTTP Basic or form fields) returns a bearer
  token that expires after `token_ttl_seconds`; an expired or missing token gets 401.
- Search: `GET /<Type>?_lastUpdated=gt<instant>&_count=<n>` returns a searchset Bundle sorted by
  `meta.lastUpdated`, with a `link[next]` while more remain, and its `total`;
  `_sort=-_lastUpdated` the newest first (one page).
- Faults on demand: every n-th request answered 429 (with Retry-After) or 503; `stop()` for good.

The loader must not depend on anything here: it speaks plain FHIR R4 and OAuth2 to any server.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

log = logging.getLogger(__name__)

RESOURCE_TYPES = (
    "Patient",
    "Practitioner",
    "Organization",
    "Location",
    "Encounter",
    "Observation",
    "Condition",
    "Procedure",
)
DEFAULT_PAGE_SIZE = 50
# `make run`'s demo server is the same server at every run, on whichever port it gets: its key
# (FHIR_SERVER_KEY) says so, where its base URL's would change with the port
DEMO_SERVER_KEY = "healthcare-warehouse-demo-fhir"


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Faults:
    """What the server does wrong, on purpose. 0 turns a fault off."""

    too_many_requests_every: int = 0
    unavailable_every: int = 0
    retry_after_seconds: int = 0
    token_ttl_seconds: float = 3600.0
    # What the token response claims; a token revoked before its advertised expiry (as EHRs do
    # on a key rotation) surprises the client with a 401 mid-pull. None: the truth.
    advertised_ttl_seconds: int | None = None


class FhirStore:
    """Resources by (type, id); every write gets a later `meta.lastUpdated` than any before."""

    def __init__(self, resources: list[dict]):
        self._lock = threading.Lock()
        self._resources: dict[tuple[str, str | None], dict] = {}
        self._clock = max(
            (_instant(r["meta"]["lastUpdated"]) for r in resources if "meta" in r),
            default=datetime.now(UTC),
        )
        for resource in resources:
            self._resources[(resource["resourceType"], resource.get("id"))] = resource

    def _tick(self) -> str:
        self._clock = max(self._clock + timedelta(milliseconds=1), datetime.now(UTC))
        return _stamp(self._clock)

    def update(self, resource_type: str, resource_id: str, changes: dict) -> dict:
        """Change a stored resource as an EHR would: its lastUpdated moves forward."""
        with self._lock:
            resource = {**self._resources[(resource_type, resource_id)], **changes}
            resource["meta"] = {**resource.get("meta", {}), "lastUpdated": self._tick()}
            self._resources[(resource_type, resource_id)] = resource
            return resource

    def add(self, resource: dict) -> dict:
        """Store a resource as given (even an invalid one), stamped as just updated."""
        with self._lock:
            stored = {**resource, "meta": {**resource.get("meta", {}), "lastUpdated": self._tick()}}
            self._resources[(stored["resourceType"], stored.get("id"))] = stored
            return stored

    def search(self, resource_type: str, after: datetime | None) -> list[dict]:
        with self._lock:
            found = [
                r
                for (kind, _), r in self._resources.items()
                if kind == resource_type
                and (after is None or _instant(r["meta"]["lastUpdated"]) > after)
            ]
        return sorted(found, key=lambda r: (r["meta"]["lastUpdated"], str(r.get("id"))))


@dataclass
class ServerState:
    store: FhirStore
    client_id: str
    client_secret: str
    faults: Faults
    page_size: int = DEFAULT_PAGE_SIZE
    tokens: dict[str, float] = field(default_factory=dict)
    requests: int = 0
    answered: dict[int, int] = field(default_factory=dict)
    # every entry sent in a search Bundle, as (resource type, id): what a client received
    served: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        log.debug("fhir server: " + format, *args)

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        content_type = "application/fhir+json" if "resourceType" in body else "application/json"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        with self.server.state.lock:
            self.server.state.answered[status] = self.server.state.answered.get(status, 0) + 1

    def _outcome(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._send(
            status,
            {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "processing", "diagnostics": text}],
            },
            headers,
        )

    def _injected_fault(self) -> bool:
        state = self.server.state
        with state.lock:
            state.requests += 1
            number = state.requests
        faults = state.faults
        if faults.too_many_requests_every and number % faults.too_many_requests_every == 0:
            self._outcome(
                HTTPStatus.TOO_MANY_REQUESTS,
                "rate limit exceeded",
                {"Retry-After": str(faults.retry_after_seconds)},
            )
            return True
        if faults.unavailable_every and number % faults.unavailable_every == 0:
            self._outcome(HTTPStatus.SERVICE_UNAVAILABLE, "temporarily unavailable")
            return True
        return False

    def do_POST(self) -> None:
        if self._injected_fault():
            return
        if urlsplit(self.path).path != "/oauth2/token":
            self._outcome(HTTPStatus.NOT_FOUND, "unknown endpoint")
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        state = self.server.state
        if form.get("grant_type") != "client_credentials":
            self._send(HTTPStatus.BAD_REQUEST, {"error": "unsupported_grant_type"})
            return
        if client_id != state.client_id or not secrets.compare_digest(
            client_secret or "", state.client_secret
        ):
            self._send(HTTPStatus.UNAUTHORIZED, {"error": "invalid_client"})
            return
        token = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens[token] = time.monotonic() + state.faults.token_ttl_seconds
        self._send(
            HTTPStatus.OK,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": state.faults.advertised_ttl_seconds
                or int(state.faults.token_ttl_seconds),
            },
        )

    def _authorized(self) -> bool:
        authorization = self.headers.get("Authorization", "")
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        with self.server.state.lock:
            expires = self.server.state.tokens.get(token)
        if expires is None or expires < time.monotonic():
            self._outcome(
                HTTPStatus.UNAUTHORIZED,
                "missing or expired token",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            return False
        return True

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/metadata":
            self._send(
                HTTPStatus.OK,
                {"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1"},
            )
            return
        if self._injected_fault() or not self._authorized():
            return
        resource_type = parts.path.strip("/")
        if resource_type not in RESOURCE_TYPES:
            self._outcome(HTTPStatus.NOT_FOUND, f"unknown resource type {resource_type}")
            return
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        after = None
        if "_lastUpdated" in query:
            value = query["_lastUpdated"]
            if not value.startswith("gt"):
                self._outcome(HTTPStatus.BAD_REQUEST, "only _lastUpdated=gt<instant> is supported")
                return
            after = _instant(value[2:])
        count = min(int(query.get("_count", self.server.state.page_size)), 1000)
        matches = self.server.state.store.search(resource_type, after)
        newest_first = query.get("_sort") == "-_lastUpdated"  # one page only: no next link
        if newest_first:
            matches = matches[::-1]
        page = matches[:count]
        with self.server.state.lock:
            self.server.state.served.extend((resource_type, r.get("id")) for r in page)
        base = f"http://{self.headers.get('Host')}"
        links = [{"relation": "self", "url": f"{base}{self.path}"}]
        if len(matches) > count and not newest_first:
            following = {**query, "_lastUpdated": "gt" + page[-1]["meta"]["lastUpdated"]}
            links.append(
                {"relation": "next", "url": f"{base}/{resource_type}?{urlencode(following)}"}
            )
        self._send(
            HTTPStatus.OK,
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(matches),
                "link": links,
                "entry": [
                    {
                        "fullUrl": f"{base}/{resource_type}/{resource.get('id')}",
                        "resource": resource,
                        "search": {"mode": "match"},
                    }
                    for resource in page
                ],
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: ServerState):
        super().__init__(address, _Handler)
        self.state = state


class DemoFhirServer:
    """The server in a background thread: `start()` returns its base URL."""

    def __init__(
        self,
        store: FhirStore,
        client_id: str,
        client_secret: str,
        faults: Faults | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ):
        self.state = ServerState(store, client_id, client_secret, faults or Faults(), page_size)
        self._server: _Server | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = _Server((host, port), self.state)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def main() -> None:
    from common import settings
    from demo.fhir_resources import demo_resources

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--history-years",
        type=int,
        default=0,
        help="spread each patient's encounters over this many years (default: the last 90 days)",
    )
    args = parser.parse_args()
    settings.load_env()
    server = DemoFhirServer(
        FhirStore(demo_resources(history_years=args.history_years)),
        client_id=os.environ.get("FHIR_CLIENT_ID", "healthcare-warehouse"),
        client_secret=settings.require("FHIR_CLIENT_SECRET"),
    )
    url = server.start(port=args.port)
    log.info("demo FHIR R4 server on %s (Ctrl-C stops it)", url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
