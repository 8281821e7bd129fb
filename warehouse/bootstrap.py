"""Create the warehouse's roles and databases, then bring its schemas, the product's own tables
and their grants up to date with the versioned migrations (warehouse/migrate.py). Safe to run on
every start: `hcw bootstrap`, and every command that needs the warehouse, do.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from warehouse.connection import (
    AIRFLOW_DATABASE,
    ROLE_PASSWORD_VARIABLES,
    Warehouse,
)
from warehouse.migrate import migrate
from warehouse.role_limits import apply_limits

log = logging.getLogger(__name__)


def _ensure_role(conn: psycopg.Connection, role: str, password: str) -> None:
    exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
    verb = "alter" if exists else "create"
    conn.execute(
        sql.SQL(verb + " role {} login password {}").format(
            sql.Identifier(role), sql.Literal(password)
        )
    )


# What a role holds beyond its grants, set on the cluster at every start. The backup takes a
# base backup of the server (REPLICATION: pg_basebackup) and reads the roles (pg_dumpall
# --globals-only), row-level security no bar (BYPASSRLS), and writes nothing: no superuser.
ROLE_MEMBERSHIPS = {"backup": ("pg_read_all_data",)}
ROLE_ATTRIBUTES = {"backup": "bypassrls replication"}


def _ensure_powers(conn: psycopg.Connection) -> None:
    for role, memberships in ROLE_MEMBERSHIPS.items():
        for membership in memberships:
            conn.execute(
                sql.SQL("grant {} to {}").format(sql.Identifier(membership), sql.Identifier(role))
            )
    for role, attribute in ROLE_ATTRIBUTES.items():
        conn.execute(sql.SQL("alter role {} " + attribute).format(sql.Identifier(role)))


def _ensure_database(conn: psycopg.Connection, database: str, owner: str) -> None:
    exists = conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone()
    if not exists:
        conn.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(database), sql.Identifier(owner)
            )
        )


def _close_other_databases(conn: psycopg.Connection, warehouse: Warehouse) -> None:
    """CONNECT and TEMPORARY on the administrator's other databases (`postgres`, `template1`, the
    demo's `research`) revoked from PUBLIC: a role reaches only the databases granted to it. A
    database another owner keeps on a shared server (WAREHOUSE_URL) is its owner's to close."""
    others = conn.execute(
        "select datname from pg_database"
        " where datallowconn and datname <> all(%s) and datdba = (select oid from pg_roles"
        " where rolname = current_user)",
        ([warehouse.database, AIRFLOW_DATABASE],),
    ).fetchall()
    for (database,) in others:
        conn.execute(
            sql.SQL("revoke connect, temporary on database {} from public").format(
                sql.Identifier(database)
            )
        )


def bootstrap(warehouse: Warehouse) -> None:
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, "postgres"), autocommit=True
    ) as conn:
        for role in ROLE_PASSWORD_VARIABLES:
            _ensure_role(conn, role, warehouse.password(role))
        _ensure_powers(conn)
        apply_limits(conn, list(ROLE_PASSWORD_VARIABLES))
        _ensure_database(conn, warehouse.database, warehouse.admin_user)
        _ensure_database(conn, AIRFLOW_DATABASE, "airflow")
        conn.execute(
            sql.SQL("revoke all on database {} from public").format(
                sql.Identifier(AIRFLOW_DATABASE)
            )
        )
        conn.execute(
            sql.SQL("grant all on database {} to airflow").format(sql.Identifier(AIRFLOW_DATABASE))
        )
        _close_other_databases(conn, warehouse)
    migrate(warehouse)
    log.info(
        "warehouse %s:%d/%s: roles, schemas and migrations in place",
        warehouse.host,
        warehouse.port,
        warehouse.database,
    )
