"""Landing an API source with dlt: pull, merge into the raw table, quarantine, reconcile, audit.

For each resource type: received (the Bundles' entries) = loaded (rows this run merged, counted in
the raw table) + quarantined + superseded (an entry replaced by a later version of the same
resource within the same pull). The cursors live in dlt's state and are committed with the load.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

import psycopg

from ingestion import dlt_pipeline
from ingestion.file_source import ReconciliationError
from ingestion.http_client import ApiClient, CircuitOpen, RetryPolicy
from ingestion.quarantine import quarantine_records
from ingestion.sources import fhir_api
from ingestion.sources.fhir_api import TypePull
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)


def _latest(pull_cursor: str | None, resources: list[dict]) -> str | None:
    stamps = [r["last_updated"] for r in resources]
    if pull_cursor:
        stamps.append(pull_cursor)
    return max(stamps, key=datetime.fromisoformat) if stamps else None


def land_fhir(
    warehouse: Warehouse,
    run_id: str,
    base_url: str,
    client_id: str,
    client_secret: str,
    token_url: str | None = None,
    page_size: int = 100,
    policy: RetryPolicy | None = None,
) -> dict[str, TypePull]:
    """Pull every resource type's changes since its cursor and land them; return what each saw."""
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

    client = ApiClient(
        f"FHIR API {base_url}",
        token_url or f"{base_url.rstrip('/')}/oauth2/token",
        client_id,
        client_secret,
        policy,
    )
    pulls = {resource_type: TypePull() for resource_type in fhir_api.RESOURCE_TYPES}
    cursors: dict[str, tuple[str | None, str | None]] = {}

    def resource_for(resource_type: str):
        def rows() -> Iterator[dict]:
            state = dlt.current.resource_state()
            cursor = state.get("cursor")
            pull = pulls[resource_type]
            landed = list(
                fhir_api.pull_type(client, base_url, resource_type, cursor, page_size, pull)
            )
            for row in landed:
                row["_pulled_in"] = run_id
            yield landed
            quarantined_stamps = [
                (q.record.get("resource") or {}).get("meta", {}).get("lastUpdated")
                for q in pull.quarantined
            ]
            seen = landed + [{"last_updated": s} for s in quarantined_stamps if _instant_or_none(s)]
            state["cursor"] = _latest(cursor, seen)
            cursors[resource_type] = (cursor, state["cursor"])

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
    try:
        pipeline.run([resource_for(t) for t in fhir_api.RESOURCE_TYPES])
    except PipelineStepFailed as failure:
        cause = failure.__cause__ or failure.__context__
        while cause is not None and not isinstance(cause, CircuitOpen):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, CircuitOpen):
            raise CircuitOpen(str(cause)) from failure
        raise
    _record(warehouse, run_id, base_url, client, pulls, cursors)
    return pulls


def _instant_or_none(text: object) -> bool:
    try:
        datetime.fromisoformat(str(text))
    except ValueError:
        return False
    return text is not None


def _record(
    warehouse: Warehouse,
    run_id: str,
    base_url: str,
    client: ApiClient,
    pulls: dict[str, TypePull],
    cursors: dict[str, tuple[str | None, str | None]],
) -> None:
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        for resource_type, pull in pulls.items():
            loaded = conn.execute(
                "select count(*) from raw_fhir.resources where resource_type = %s and _pulled_in = %s",
                (resource_type, run_id),
            ).fetchone()[0]
            fresh = [
                q
                for q in pull.quarantined
                if not conn.execute(
                    "select 1 from quarantine.rejected_records where source = 'fhir'"
                    " and file_hash = %s",
                    (fhir_api.content_key(q.record),),
                ).fetchone()
            ]
            for record in fresh:
                quarantine_records(
                    conn,
                    "fhir",
                    f"{base_url}/{resource_type}",
                    fhir_api.content_key(record.record),
                    [record],
                    run_id,
                )
            if loaded != len(pull.landed) or pull.superseded < 0:
                conn.rollback()
                raise ReconciliationError(
                    f"FHIR {resource_type}: received {pull.received} != loaded {loaded}"
                    f" + quarantined {len(pull.quarantined)} + superseded {pull.superseded}"
                )
            cursor_from, cursor_to = cursors.get(resource_type, (None, None))
            conn.execute(
                """
                insert into audit.api_pulls
                    (run_id, source, resource_type, cursor_from, cursor_to, pages, requests,
                     rows_received, rows_loaded, rows_quarantined, rows_superseded)
                values (%s, 'fhir', %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    run_id,
                    resource_type,
                    cursor_from,
                    cursor_to,
                    pull.pages,
                    client.requests_made,
                    pull.received,
                    loaded,
                    len(pull.quarantined),
                    pull.superseded,
                ),
            )
            log.info(
                "FHIR %s: received %d = loaded %d + quarantined %d + superseded %d",
                resource_type,
                pull.received,
                loaded,
                len(pull.quarantined),
                pull.superseded,
            )
        conn.commit()
