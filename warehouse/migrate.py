"""Versioned migrations of what the product owns in the warehouse: the audit tables, the file
ledger, quarantine, monitoring, and the schemas' grants (dbt's tables are dbt's own).

yoyo-migrations applies the plain-SQL files of `warehouse/migrations/` (`NNNN_what.sql`) once
each, in order, each in its own transaction (PostgreSQL's DDL is transactional: a failing one
changes nothing, and it is recorded in the same transaction), records them in
`public._yoyo_migration`, and holds an advisory lock while it works, so two starters never apply
one twice. Why yoyo: the migrations stay the plain SQL the
team reviews; alembic, also at hand through Airflow, would wrap each in Python and SQLAlchemy.

A warehouse that main built before migrations (its tables made by statements replayed at every
start) is brought under them by the baseline: `0001_baseline.sql` re-states that schema with
idempotent statements only, so applying it there changes no row and records it as applied.
Later migrations are written for the recorded state, never idempotent by accident.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg

from warehouse.connection import Warehouse

log = logging.getLogger(__name__)
logging.getLogger("yoyo").setLevel(logging.WARNING)  # not a line for each statement

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_TABLE = "_yoyo_migration"
# pg_advisory_lock's key for "migrating this database" (any fixed bigint of our own)
ADVISORY_LOCK_KEY = 7_301_118_042


class MigrationFailed(RuntimeError):
    """A migration could not be applied; its transaction was rolled back."""


@dataclass(frozen=True)
class Outcome:
    applied: list[str]  # migration ids applied now, in order
    baseline: bool  # the warehouse predates migrations: brought under them now


def _backend(warehouse: Warehouse):
    from yoyo import get_backend

    return get_backend(
        warehouse.url(warehouse.admin_user, driver="postgresql+psycopg"),
        migration_table=MIGRATION_TABLE,
    )


def _predates_migrations(warehouse: Warehouse) -> bool:
    """Product tables, but no record of any migration: built by main before migrations."""
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as conn:
        recorded, product = conn.execute(
            "select to_regclass(%s) is not null, to_regclass('audit.pipeline_runs') is not null",
            (f"public.{MIGRATION_TABLE}",),
        ).fetchone()
    return product and not recorded


def applied_migrations(warehouse: Warehouse) -> list[str]:
    """The ids of the migrations recorded as applied, in the order they were applied."""
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user)) as conn:
        if conn.execute("select to_regclass(%s)", (f"public.{MIGRATION_TABLE}",)).fetchone()[0]:
            query = f"select migration_id from public.{MIGRATION_TABLE} order by applied_at_utc"
            return [row[0] for row in conn.execute(query)]
    return []


def migrate(warehouse: Warehouse, folder: Path = MIGRATIONS_DIR) -> Outcome:
    """Apply the migrations of `folder` the warehouse has not had yet, in order: each applied and
    recorded in one transaction, under a session-level advisory lock (another starter waits; a
    killed one leaves no lock behind)."""
    from yoyo import read_migrations

    baseline = _predates_migrations(warehouse)
    if baseline:
        log.info("warehouse predates migrations: applying the baseline over it (0001, idempotent)")
    migrations = read_migrations(str(folder))
    backend = _backend(warehouse)
    applied = []
    try:
        backend.ensure_internal_schema_updated()
        backend.execute("select pg_advisory_lock(%(key)s)", {"key": ADVISORY_LOCK_KEY})
        for migration in backend.to_apply(migrations):
            try:
                with backend.transaction():
                    migration.process_steps(backend, "apply")
                    backend.mark_one(migration)
            except backend.DatabaseError as error:
                # the reason without its DETAIL, which may quote a row's values
                reason = getattr(getattr(error, "diag", None), "message_primary", None)
                raise MigrationFailed(
                    f"{Path(migration.path).name}: {type(error).__name__}"
                    f" ({getattr(error, 'sqlstate', None)}): {reason}; nothing of it was applied"
                ) from None
            applied.append(migration.id)
            log.info("migration %s applied", migration.id)
    finally:
        backend.connection.close()  # and with it the advisory lock
    return Outcome(applied, baseline)
