"""The research database's `clinical_trials`, extracted incrementally with dlt's sql_database
source: rows whose `updated_at` moved past the cursor, merged on `trial_id` into
`raw_research.clinical_trials`. Reconciliation: the rows changed since the cursor, counted at the
source before the pull, equal the rows this run merged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from common import settings
from ingestion import dlt_pipeline
from ingestion.file_source import ReconciliationError
from warehouse.connection import Warehouse
from warehouse.transport import Transport, transport_for

log = logging.getLogger(__name__)

DATASET = "raw_research"
TABLE = "clinical_trials"


@dataclass(frozen=True)
class ResearchDatabase:
    host: str
    port: int
    database: str
    user: str
    password: str
    # TLS with its certificate checked when on another machine (warehouse/transport.py)
    transport: Transport = field(default_factory=Transport)

    def url(self) -> str:
        from urllib.parse import quote

        return (
            f"postgresql+psycopg2://{quote(self.user)}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{self.database}{self.transport.url_query()}"
        )


def research_database(warehouse: Warehouse) -> ResearchDatabase:
    """RESEARCH_DB_HOST/PORT/NAME/USER (and RESEARCH_DB_SSLROOTCERT when it is on another
    machine), or the demo database on the warehouse's server, reached as the warehouse is."""
    settings.load_env()
    host = os.environ.get("RESEARCH_DB_HOST")
    return ResearchDatabase(
        host=host or warehouse.host,
        port=int(os.environ.get("RESEARCH_DB_PORT", warehouse.port)),
        database=os.environ.get("RESEARCH_DB_NAME", "research"),
        user=os.environ.get("RESEARCH_DB_USER", "research_reader"),
        password=settings.require_secret("RESEARCH_DB_PASSWORD"),
        transport=transport_for(
            host,
            os.environ.get("RESEARCH_DB_SSLMODE", ""),
            os.environ.get("RESEARCH_DB_SSLROOTCERT", ""),
            "RESEARCH_DB_HOST",
        )
        if host
        else warehouse.transport,
    )


def _changed_at_source(source: ResearchDatabase, cursor: datetime | None) -> int:
    with psycopg.connect(
        host=source.host,
        port=source.port,
        dbname=source.database,
        user=source.user,
        password=source.password,
        **source.transport.connect_kwargs(),
    ) as conn:
        if cursor is None:
            return conn.execute(f"select count(*) from {TABLE}").fetchone()[0]
        return conn.execute(
            f"select count(*) from {TABLE} where updated_at > %s", (cursor,)
        ).fetchone()[0]


def _loaded_up_to(warehouse: Warehouse) -> datetime | None:
    """The newest `updated_at` landed so far: where dlt's incremental cursor stands too."""
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        if not conn.execute("select to_regclass(%s)", (f"{DATASET}.{TABLE}",)).fetchone()[0]:
            return None
        return conn.execute(f"select max(updated_at) from {DATASET}.{TABLE}").fetchone()[0]


def land_research(warehouse: Warehouse, run_id: str) -> dict[str, int]:
    """Pull the trials changed since the last run; return received and loaded counts."""
    import dlt
    from dlt.sources.sql_database import sql_table

    source = research_database(warehouse)
    pipeline = dlt_pipeline.pipeline("research_db", DATASET, warehouse)
    trials = sql_table(
        credentials=source.url(),
        table=TABLE,
        incremental=dlt.sources.incremental("updated_at"),
        write_disposition="merge",
        primary_key="trial_id",
        backend="sqlalchemy",
    ).add_map(lambda row: {**row, "_pulled_in": run_id})
    cursor = _loaded_up_to(warehouse)
    received = _changed_at_source(source, cursor)
    pipeline.run(trials)
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        loaded = conn.execute(
            f"select count(*) from {DATASET}.{TABLE} where _pulled_in = %s", (run_id,)
        ).fetchone()[0]
        if loaded != received:
            raise ReconciliationError(
                f"research {TABLE}: {received} rows changed at the source, {loaded} merged"
            )
        conn.execute(
            """
            insert into audit.api_pulls
                (run_id, source, resource_type, cursor_from, cursor_to, pages, requests,
                 rows_received, rows_loaded, rows_quarantined, rows_superseded)
            values (%s, 'research', %s, %s, %s, 1, 1, %s, %s, 0, 0)
            """,
            (
                run_id,
                TABLE,
                str(cursor) if cursor else None,
                str(_loaded_up_to(warehouse)),
                received,
                loaded,
            ),
        )
    log.info("research %s: received %d = loaded %d", TABLE, received, loaded)
    dlt_pipeline.forget_loaded_packages(pipeline)
    return {"received": received, "loaded": loaded}
