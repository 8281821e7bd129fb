"""A FHIR R4 REST API, pulled incrementally: `_lastUpdated=gt<cursor>` per resource type, Bundle
`link[next]` pagination, OAuth2 client credentials, retries and a circuit breaker
(ingestion/http_client.py). Works unchanged against any FHIR R4 server given its base URL and
client credentials.

Every resource lands whole, as JSON, in `raw_fhir.resources`, merged on (server, resource_type,
id): a resource updated at the source replaces its earlier version, and two servers (two
facilities) holding the same id each keep theirs. A resource that fails validation (no id, an
unknown type, a malformed date or any other breach of the model) goes to the shared
quarantine instead. The models are FHIR **R4B** (4.3.0) ones: `fhir.resources` 8 ships R4B and
R5, no R4 (4.0.1). R4B changed selected modules only (medicinal product definition,
evidence-based medicine, subscriptions), and HL7 states that an implementer not using them sees
no functional difference between R4 and R4B (https://hl7.org/fhir/R4B/r4b-explanation.html;
the structural differences: https://hl7.org/fhir/R4B/diff.html): the resources pulled here are
none of those. Each server's cursor per type lives in dlt's state, committed with the load
itself: a server never pulled before is pulled in full, whatever another server's cursor says.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pydantic

from ingestion.http_client import ApiClient
from ingestion.quarantine import QuarantinedRecord

log = logging.getLogger(__name__)

# What the warehouse models (US Core's): who, where, which stay, what was measured, diagnosed and
# done. Organization and Location are the facilities an Encounter names (serviceProvider,
# location); Condition and Procedure its diagnoses and procedures.
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
DATASET = "raw_fhir"
TABLE = "resources"


DEFAULT_PORTS = {"http": 80, "https": 443}


def server_key(base_url: str) -> str:
    """A FHIR server's key, from its base URL: scheme and host lower-cased, a default port, a
    trailing slash, a query and a fragment dropped (`HTTPS://Fhir.Example.org:443/r4/` is
    `https://fhir.example.org/r4`). Raw rows, cursors and audit rows carry it."""
    parts = urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("a FHIR base URL is http(s)://host[:port][/path]")
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port and parts.port != DEFAULT_PORTS[scheme] else ""
    return f"{scheme}://{host}{port}{parts.path.rstrip('/')}"


@dataclass
class TypePull:
    """What one resource type's pull saw."""

    pages: int = 0
    received: int = 0  # Bundle entries
    landed: dict[str, dict] = field(default_factory=dict)  # id -> latest valid row
    quarantined: list[QuarantinedRecord] = field(default_factory=list)

    @property
    def superseded(self) -> int:
        """Entries replaced by a later version of the same resource within this pull."""
        return self.received - len(self.landed) - len(self.quarantined)


def _model(resource_type: str):
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


def problem(resource: Any, expected_type: str) -> tuple[str, str] | None:
    """(rule, reason) if the resource may not land; never quotes a value."""
    if not isinstance(resource, dict):
        return "resource_is_object", "the entry's resource is not a JSON object"
    resource_type = resource.get("resourceType")
    if resource_type not in RESOURCE_TYPES:
        return "resource_type_known", "resourceType is not one this warehouse lands"
    if resource_type != expected_type:
        return "resource_type_matches_search", f"a {resource_type} in a {expected_type} search"
    if not resource.get("id"):
        return "resource_has_id", "id is missing"
    last_updated = (resource.get("meta") or {}).get("lastUpdated")
    try:
        datetime.fromisoformat(last_updated)
    except (TypeError, ValueError):
        return "meta_last_updated_is_instant", "meta.lastUpdated is missing or not an instant"
    try:
        _model(resource_type).model_validate(resource)
    except pydantic.ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})[:3]
        return "resource_fits_r4b_model", f"fails the FHIR R4B model at {', '.join(fields)}"
    return None


def pull_type(
    client: ApiClient,
    base_url: str,
    resource_type: str,
    cursor: str | None,
    page_size: int,
    pull: TypePull,
) -> Iterator[dict]:
    """Page through one type's changes since `cursor`, keeping what is valid in `pull.landed`."""
    params: dict[str, Any] | None = {"_count": page_size, "_sort": "_lastUpdated"}
    if cursor:
        params["_lastUpdated"] = f"gt{cursor}"
    url: str | None = f"{base_url.rstrip('/')}/{resource_type}"
    while url:
        bundle = client.get_json(url, params=params)
        params = None  # the next link carries the whole query
        pull.pages += 1
        page_url = url
        for position, entry in enumerate(bundle.get("entry") or [], start=1):
            pull.received += 1
            resource = entry.get("resource")
            found = problem(resource, resource_type)
            if found:
                rule, reason = found
                pull.quarantined.append(
                    QuarantinedRecord(position, rule, f"{rule}: {reason}", {"resource": resource})
                )
                log.warning(
                    "%s page %d: entry %d: %s: %s",
                    resource_type,
                    pull.pages,
                    position,
                    rule,
                    reason,
                )
                continue
            pull.landed[resource["id"]] = {
                "resource_type": resource_type,
                "id": resource["id"],
                "last_updated": resource["meta"]["lastUpdated"],
                "resource": resource,
            }
        log.info(
            "%s: page %d (%d entries so far) from %s",
            resource_type,
            pull.pages,
            pull.received,
            page_url.split("?")[0],
        )
        url = next(
            (link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None
        )
    yield from pull.landed.values()


def newest_and_total(
    client: ApiClient, base_url: str, resource_type: str
) -> tuple[str | None, int | None]:
    """What the server holds of a type: its newest `meta.lastUpdated` (None: it holds none) and
    how many (None: the server does not say). One search, the newest first."""
    bundle = client.get_json(
        f"{base_url.rstrip('/')}/{resource_type}",
        params={"_sort": "-_lastUpdated", "_count": 1, "_total": "accurate"},
    )
    # a search's own messages (an OperationOutcome, search mode "outcome") are no resource of it
    matches = [
        entry.get("resource") or {}
        for entry in bundle.get("entry") or []
        if (entry.get("search") or {}).get("mode", "match") == "match"
    ]
    newest = (matches[0].get("meta") or {}).get("lastUpdated") if matches else None

    total = bundle.get("total")
    return newest, total if isinstance(total, int) else None


def content_key(record: dict) -> str:
    """A stable hash of a quarantined resource, so pulling it again does not quarantine it twice."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
