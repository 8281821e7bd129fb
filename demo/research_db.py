"""The demo research database: a separate PostgreSQL database (`research`) holding the
`clinical_trials` table, for the same patients as the other sources.

    python -m demo.research_db      # create (or refill) it on the warehouse's server

Its reader role, `research_reader`, takes its password from RESEARCH_DB_PASSWORD in `.env`.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from common import settings
from demo.patients import patient_id
from warehouse.connection import Warehouse, from_environment

log = logging.getLogger(__name__)

DATABASE = "research"
READER = "research_reader"

TABLE_DDL = """
create table if not exists clinical_trials (
    trial_id text primary key,
    patient_id text not null,
    enrollment_date date not null,
    treatment_arm text not null,
    primary_endpoint_value numeric(10, 3),
    secondary_endpoints jsonb,
    adverse_events jsonb,
    completion_status text not null,
    updated_at timestamptz not null
)
"""

ARMS = ("placebo", "low_dose", "high_dose")
STATUSES = ("enrolled", "active", "completed", "withdrawn")
ADVERSE = ("headache", "nausea", "fatigue", "rash", "dizziness")


def ensure_database(warehouse: Warehouse) -> None:
    """The research database and its read-only role, as a hospital's would be."""
    password = settings.require("RESEARCH_DB_PASSWORD")
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, "postgres"), autocommit=True
    ) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (READER,)).fetchone()
        verb = "alter" if exists else "create"
        conn.execute(
            sql.SQL(verb + " role {} login password {}").format(
                sql.Identifier(READER), sql.Literal(password)
            )
        )
        if not conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone():
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
        # only its reader connects, as a hospital's research database would allow
        conn.execute(
            sql.SQL("revoke connect, temporary on database {} from public").format(
                sql.Identifier(DATABASE)
            )
        )
        conn.execute(
            sql.SQL("grant connect on database {} to {}").format(
                sql.Identifier(DATABASE), sql.Identifier(READER)
            )
        )
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user, DATABASE)) as conn:
        conn.execute(TABLE_DDL)
        conn.execute(
            sql.SQL("grant select on clinical_trials to {}").format(sql.Identifier(READER))
        )


def _trial(rng: random.Random, number: int, updated_at: datetime) -> tuple:
    events = rng.sample(ADVERSE, rng.randint(0, 2))
    return (
        f"TRIAL_{number:05d}",
        patient_id(rng),
        date(2023, 1, 1) + timedelta(days=rng.randrange(0, 400)),
        rng.choice(ARMS),
        round(rng.uniform(0, 100), 3),
        json.dumps({"quality_of_life": rng.randint(1, 10), "weeks_on_study": rng.randint(1, 52)}),
        json.dumps([{"event": e, "grade": rng.randint(1, 3)} for e in events]),
        rng.choice(STATUSES),
        updated_at,
    )


def fill(warehouse: Warehouse, trials: int = 100, seed: int = 31) -> int:
    """Insert `trials` rows (those already there are left alone); return how many were new."""
    rng = random.Random(seed)
    start = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
    rows = [_trial(rng, n, start + timedelta(seconds=n)) for n in range(1, trials + 1)]
    connection = warehouse.connect_kwargs(warehouse.admin_user, DATABASE)
    with psycopg.connect(**connection) as conn, conn.cursor() as cur:
        before = cur.execute("select count(*) from clinical_trials").fetchone()[0]
        cur.executemany(
            "insert into clinical_trials values (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (trial_id) do nothing",
            rows,
        )
        return cur.execute("select count(*) from clinical_trials").fetchone()[0] - before


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warehouse = from_environment()
    ensure_database(warehouse)
    log.info("research database: %d new demo clinical trials", fill(warehouse))


if __name__ == "__main__":
    main()
