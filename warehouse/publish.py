"""Write, audit, publish: blue/green build schemas behind analysts' views.

dbt builds the marts into whichever of `build_blue` and `build_green` is not published; the gate
validates it; publishing then points a view in `analytics` at each relation of the allow-list the
build recorded (audit.published_columns: the models that say `meta: {published: true}`, with their
documented columns only), in one transaction; `analyst` may select them by the administrator's
default privileges in `analytics` (migration 0010: no working role grants). A
column the SQL adds without documenting it stays unpublished; a relation named like a published
one (fct_, dim_, mart_, deid_) but not listed refuses the publication. Nothing is copied or
rebuilt: incremental marts stay incremental in each build schema, and a build that fails the gate
is never seen by analysts. A relation's latest version is selected by its model's name and by
`<name>_v<N>`, an older one kept for its deprecation window by `<name>_v<N>`; a view no
publication names any more (a withdrawn version) is dropped (docs/published_versions.md).
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from warehouse.connection import Warehouse

log = logging.getLogger(__name__)

BUILD_SCHEMAS = ("build_blue", "build_green")
PUBLISHED_SCHEMA = "analytics"


class PublishRefused(Exception):
    """The build schema has no passing gate verdict for this run, or holds what the allow-list
    of published relations does not declare."""


def published_schema(conn: psycopg.Connection) -> str | None:
    row = conn.execute(
        "select build_schema from audit.publications order by published_at desc limit 1"
    ).fetchone()
    return row[0] if row else None


def next_build_schema(warehouse: Warehouse) -> str:
    """The build schema this run builds into: the one analysts are not reading."""
    with psycopg.connect(**warehouse.connect_kwargs("transformer")) as conn:
        live = published_schema(conn)
    return BUILD_SCHEMAS[1] if live == BUILD_SCHEMAS[0] else BUILD_SCHEMAS[0]


def _gate_passed(conn: psycopg.Connection, build_schema: str, run_id: str) -> bool:
    row = conn.execute(
        """
        select passed from audit.gate_results
        where checkpoint = 'publish_gate' and build_schema = %s and run_id = %s
        order by recorded_at desc limit 1
        """,
        (build_schema, run_id),
    ).fetchone()
    return bool(row and row[0])


def _mart_tables(conn: psycopg.Connection, build_schema: str) -> list[str]:
    """The tables of the build schema named as published relations are (fct_, dim_, mart_,
    deid_): each must be on the allow-list."""
    rows = conn.execute(
        """
        select table_name from information_schema.tables
        where table_schema = %s and table_type = 'BASE TABLE'
          and (table_name like 'fct\\_%%' or table_name like 'dim\\_%%'
               or table_name like 'mart\\_%%' or table_name like 'deid\\_%%')
        order by table_name
        """,
        (build_schema,),
    ).fetchall()
    return [row[0] for row in rows]


_RELATION_KINDS = {"v": "a view", "m": "a materialized view", "f": "a foreign table"}


def _not_tables(
    conn: psycopg.Connection, build_schema: str, names: list[str]
) -> list[tuple[str, str]]:
    """Those of `names` that are relations of the build schema but not tables, with their kind."""
    rows = conn.execute(
        """
        select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = %s and c.relname = any(%s) and c.relkind not in ('r', 'p')
        order by c.relname
        """,
        (build_schema, names),
    ).fetchall()
    return [(name, _RELATION_KINDS.get(kind, f"relkind {kind}")) for name, kind in rows]


def allow_list(conn: psycopg.Connection, build_schema: str) -> dict[str, list[str]]:
    """What analysts may select of `build_schema`: each published relation and its columns, as
    its last dbt build recorded them (dbt_project/macros/record_published_columns.sql)."""
    rows = conn.execute(
        "select relation, columns from audit.published_columns where build_schema = %s",
        (build_schema,),
    ).fetchall()
    return dict(rows)


def published_names(conn: psycopg.Connection, build_schema: str) -> dict[str, list[str]]:
    """The names analysts select each relation of the allow-list by (docs/published_versions.md):
    a model's latest version by the model's name and `<name>_v<N>`, an older version kept for its
    deprecation window by `<name>_v<N>`."""
    rows = conn.execute(
        "select relation, published_as from audit.published_columns where build_schema = %s",
        (build_schema,),
    ).fetchall()
    return dict(rows)


def _views_named_by_no_one(conn: psycopg.Connection, names: set[str]) -> list[str]:
    """The views of analytics that this publication does not name: a relation's withdrawn
    version, or a relation no longer published."""
    rows = conn.execute(
        "select table_name from information_schema.views where table_schema = %s",
        (PUBLISHED_SCHEMA,),
    ).fetchall()
    return sorted(row[0] for row in rows if row[0] not in names)


def unlisted_relations(
    conn: psycopg.Connection, build_schema: str, listed: dict[str, list[str]] | None = None
) -> list[str]:
    """Tables of the build schema named like published relations that the allow-list (`listed`,
    else read) lacks."""
    listed = allow_list(conn, build_schema) if listed is None else listed
    return [table for table in _mart_tables(conn, build_schema) if table not in listed]


def _table_columns(conn: psycopg.Connection, build_schema: str, table: str) -> set[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns"
        " where table_schema = %s and table_name = %s",
        (build_schema, table),
    ).fetchall()
    return {row[0] for row in rows}


def publish(warehouse: Warehouse, build_schema: str, run_id: str) -> list[str]:
    """Point analytics' views at `build_schema`; refuse unless its gate passed in this run."""
    if build_schema not in BUILD_SCHEMAS:
        raise ValueError(f"{build_schema} is not a build schema ({', '.join(BUILD_SCHEMAS)})")
    with psycopg.connect(**warehouse.connect_kwargs("publisher")) as conn:
        if not _gate_passed(conn, build_schema, run_id):
            raise PublishRefused(f"{build_schema}: the quality gate did not pass in run {run_id}")
        listed = allow_list(conn, build_schema)
        unlisted = unlisted_relations(conn, build_schema, listed)
        if unlisted:
            raise PublishRefused(
                f"{build_schema}: not on the allow-list of published relations: "
                + ", ".join(unlisted)
            )
        built = set(_mart_tables(conn, build_schema))
        not_tables = _not_tables(conn, build_schema, [t for t in listed if t not in built])
        if not_tables:
            # a view runs with its owner's rights: the builder's, who reads raw PHI; a table's
            # rows are what the gate judged
            raise PublishRefused(
                f"{build_schema}: published relations are tables; these are not: "
                + ", ".join(f"{name} ({kind})" for name, kind in not_tables)
            )
        missing_relations = sorted(table for table in listed if table not in built)
        if missing_relations:
            raise PublishRefused(
                f"{build_schema}: on the allow-list but not built: {', '.join(missing_relations)}"
            )
        tables = sorted(listed)
        names = published_names(conn, build_schema)
        for table in tables:
            missing = set(listed[table]) - _table_columns(conn, build_schema, table)
            if missing:
                raise PublishRefused(
                    f"{build_schema}.{table}: published columns it lacks: {', '.join(sorted(missing))}"
                )
            for name in names[table]:
                view = sql.Identifier(PUBLISHED_SCHEMA, name)
                conn.execute(sql.SQL("drop view if exists {}").format(view))
                conn.execute(
                    sql.SQL("create view {} as select {} from {}").format(
                        view,
                        sql.SQL(", ").join(map(sql.Identifier, listed[table])),
                        sql.Identifier(build_schema, table),
                    )
                )
        for name in _views_named_by_no_one(conn, {n for table in tables for n in names[table]}):
            conn.execute(sql.SQL("drop view {}").format(sql.Identifier(PUBLISHED_SCHEMA, name)))
            log.info("withdrawn from analysts: %s.%s", PUBLISHED_SCHEMA, name)
        conn.execute(
            "insert into audit.publications (run_id, build_schema, relations) values (%s, %s, %s)",
            (run_id, build_schema, tables),
        )
    log.info("published %s: %s", build_schema, ", ".join(tables))
    return tables
