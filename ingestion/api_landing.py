"""Landing an API source with dlt: pull, merge into the raw table, quarantine, reconcile, audit.

For each resource type: received (the Bundles' entries) = loaded (rows this run merged, counted in
the raw table) + quarantined + superseded (an entry replaced by a later version of the same
resource within the same pull). The cursors live in dlt's state, one per server and resource
type, and are committed with the load.

A warehouse whose FHIR resources and cursors predate keying by server (one unnamed server) keeps
them: the pull of the server that owns them (`owns_unkeyed_pulls`, the first configured server)
names them its own, its rows and its cursors, before it pulls; any other server's pull refuses
while they are unnamed, rather than landing beside them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
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
    server: str | None = None,
    owns_unkeyed_pulls: bool = False,
) -> dict[str, TypePull]:
    """Pull every resource type's changes on one server since its cursor there, and land them;
    return what each saw. `server` is the server's key (by default its base URL's,
    fhir_api.server_key)."""
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

    server = server or fhir_api.server_key(base_url)
    unkeyed = _key_unkeyed_resources(warehouse, server if owns_unkeyed_pulls else None)
    if unkeyed:
        log.info(
            "FHIR server %s: %d resources pulled before servers were keyed are its own",
            server,
            unkeyed,
        )

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
            server_cursors = state.setdefault("cursors", {})
            if owns_unkeyed_pulls and "cursor" in state:  # the one cursor before servers were keyed
                server_cursors.setdefault(server, state.pop("cursor"))
            cursor = server_cursors.get(server)
            if cursor is None:
                log.info(
                    "FHIR server %s: %s never pulled from it: a full pull", server, resource_type
                )
            pull = pulls[resource_type]
            landed = list(
                fhir_api.pull_type(client, base_url, resource_type, cursor, page_size, pull)
            )
            for row in landed:
                row["server"] = server
                row["_pulled_in"] = run_id
            yield landed
            quarantined_stamps = [
                (q.record.get("resource") or {}).get("meta", {}).get("lastUpdated")
                for q in pull.quarantined
            ]
            seen = landed + [{"last_updated": s} for s in quarantined_stamps if _instant_or_none(s)]
            server_cursors[server] = _latest(cursor, seen)
            cursors[resource_type] = (cursor, server_cursors[server])

        return dlt.resource(
            rows,
            name=f"fhir_{resource_type.lower()}",
            table_name=fhir_api.TABLE,
            write_disposition="merge",
            primary_key=["server", "resource_type", "id"],
            columns={
                "resource": {"data_type": "json"},
                "last_updated": {"data_type": "timestamp"},
            },
        )

    pipeline = dlt_pipeline.pipeline("fhir_api", fhir_api.DATASET, warehouse)
    if pipeline.has_pending_data:
        # dlt would load it first and pull nothing: the rows of an earlier pull (of any server:
        # all share this pipeline), with no record of that pull. Aborted instead, dlt's state
        # goes back to the last committed cursors, and what it held is pulled again.
        log.warning(
            "FHIR: an earlier pull's load did not finish: aborted (dlt abort_packages);"
            " its resources are pulled again from the last committed cursors"
        )
        pipeline.abort_packages()
    try:
        pipeline.run([resource_for(t) for t in fhir_api.RESOURCE_TYPES])
    except PipelineStepFailed as failure:
        cause = failure.__cause__ or failure.__context__
        while cause is not None and not isinstance(cause, CircuitOpen):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, CircuitOpen):
            raise CircuitOpen(str(cause)) from failure
        raise
    _record(warehouse, run_id, base_url, server, client, pulls, cursors)
    dlt_pipeline.forget_loaded_packages(pipeline)
    return pulls


def _key_unkeyed_resources(warehouse: Warehouse, owner: str | None) -> int:
    """Name `owner` the server of the raw FHIR resources pulled before servers were keyed (adding
    the column, to dlt's staging copy of the table too, whose rows it would otherwise refuse to
    key); how many. With no owner, refuse while there are any."""
    table = f"{fhir_api.DATASET}.{fhir_api.TABLE}"
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:

        def keyed(schema: str) -> bool | None:
            """Whether the schema's table has its server column; None: no such table."""
            return conn.execute(
                "select case when to_regclass(%s) is not null then exists ("
                " select 1 from information_schema.columns"
                " where table_schema = %s and table_name = %s and column_name = 'server') end",
                (f"{schema}.{fhir_api.TABLE}", schema, fhir_api.TABLE),
            ).fetchone()[0]

        has_server = keyed(fhir_api.DATASET)
        if has_server is None:
            return 0
        if owner is None:
            unnamed = conn.execute(
                f"select count(*) from {table}" + (" where server is null" if has_server else "")
            ).fetchone()[0]
            if unnamed:
                raise ReconciliationError(
                    f"{table} holds {unnamed} resources pulled before FHIR servers were keyed:"
                    " pull the server they came from first (the first configured one), which"
                    " names them its own"
                )
            return 0
        named = 0
        for schema in (fhir_api.DATASET, f"{fhir_api.DATASET}_staging"):
            found = keyed(schema)
            if found is None:
                continue
            if not found:
                conn.execute(f"alter table {schema}.{fhir_api.TABLE} add column server text")
            updated = conn.execute(
                f"update {schema}.{fhir_api.TABLE} set server = %s where server is null", (owner,)
            ).rowcount
            named += updated if schema == fhir_api.DATASET else 0
        if named:
            # dbt makes the locked crosswalk's bare FHIR ids this server's references by it
            # (dbt_project/macros/fhir_reference.sql): they can be one server's only
            recorded = conn.execute(
                "insert into audit.fhir_unkeyed_owner (server, resources) values (%s, %s)"
                " on conflict (only_row) do nothing returning server",
                (owner, named),
            ).fetchone()
            if recorded is None:
                (earlier,) = conn.execute("select server from audit.fhir_unkeyed_owner").fetchone()
                if earlier != owner:
                    raise ReconciliationError(
                        f"{table} holds {named} resources pulled before FHIR servers were keyed,"
                        f" but {earlier} named such resources its own already: restore that"
                        " server as the first configured one (docs/runbook.md)"
                    )
        conn.commit()
        return named


@dataclass
class ServerSeen:
    """What a pull saw of its server for one resource type, and what it found wrong, if anything."""

    total: int | None  # how many it holds, if it says
    newest: str | None  # its newest meta.lastUpdated
    warning: str | None = None


def _server_seen(
    conn: psycopg.Connection,
    client: ApiClient,
    base_url: str,
    server: str,
    resource_type: str,
    pull: TypePull,
    cursor_from: str | None,
    cursor_to: str | None,
) -> ServerSeen:
    """What the server holds of the type, and whether it says the server behind this address is
    not the one pulled before: it holds fewer than at its last pull, or its newest is older than
    the cursor and not what it was then (a server swapped or restored from a backup, whose
    resources an incremental pull would miss). A full pull saw it whole: no request. A check that
    cannot be made is a warning too, never a failure: the pull has landed."""
    if cursor_from is None:
        return ServerSeen(len(pull.landed) + len(pull.quarantined), cursor_to)
    last_total, last_newest = conn.execute(
        """
        select server_total, server_newest from audit.api_pulls
        where source = 'fhir' and server = %s and resource_type = %s
          and (server_total is not null or server_newest is not null)
        order by recorded_at desc limit 1
        """,
        (server, resource_type),
    ).fetchone() or (None, None)
    try:
        newest, total = fhir_api.newest_and_total(client, base_url, resource_type)
        newer_than_newest = cursor_to is not None and (
            newest is None or datetime.fromisoformat(newest) < datetime.fromisoformat(cursor_to)
        )
    except Exception as error:  # noqa: BLE001 (named in the warning; the pull stands)
        warning = f"its newest {resource_type} and total could not be read ({type(error).__name__})"
        log.warning("FHIR server %s: %s", server, warning)
        return ServerSeen(None, None, warning)
    found = []
    if newer_than_newest and newest != last_newest:
        found.append(
            f"the cursor {cursor_to} is newer than any {resource_type} the server holds"
            f" (its newest: {newest or 'none'})"
        )
    if total is not None and last_total is not None and total < last_total:
        found.append(
            f"the server holds {total} {resource_type}, fewer than the {last_total} at its last pull"
        )
    warning = None
    if found:
        warning = "; ".join(found) + ": a changed or restored server? (docs/runbook.md)"
        log.warning("FHIR server %s: %s", server, warning)
    return ServerSeen(total, newest, warning)


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
    server: str,
    client: ApiClient,
    pulls: dict[str, TypePull],
    cursors: dict[str, tuple[str | None, str | None]],
) -> None:
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        for resource_type, pull in pulls.items():
            loaded = conn.execute(
                "select count(*) from raw_fhir.resources"
                " where server = %s and resource_type = %s and _pulled_in = %s",
                (server, resource_type, run_id),
            ).fetchone()[0]
            searched = f"{base_url}/{resource_type}"
            fresh = [
                q
                for q in pull.quarantined
                if not conn.execute(
                    "select 1 from quarantine.rejected_records where source = 'fhir'"
                    " and file_name = %s and file_hash = %s",
                    (searched, fhir_api.content_key(q.record)),
                ).fetchone()
            ]
            for record in fresh:
                quarantine_records(
                    conn,
                    "fhir",
                    searched,
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
            seen = _server_seen(
                conn, client, base_url, server, resource_type, pull, cursor_from, cursor_to
            )
            conn.execute(
                """
                insert into audit.api_pulls
                    (run_id, source, server, resource_type, cursor_from, cursor_to, pages,
                     requests, rows_received, rows_loaded, rows_quarantined, rows_superseded,
                     server_total, server_newest, warning)
                values (%s, 'fhir', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    run_id,
                    server,
                    resource_type,
                    cursor_from,
                    cursor_to,
                    pull.pages,
                    client.requests_made,
                    pull.received,
                    loaded,
                    len(pull.quarantined),
                    pull.superseded,
                    seen.total,
                    seen.newest,
                    seen.warning,
                ),
            )
            log.info(
                "FHIR %s %s: received %d = loaded %d + quarantined %d + superseded %d",
                server,
                resource_type,
                pull.received,
                loaded,
                len(pull.quarantined),
                pull.superseded,
            )
        conn.commit()
