"""Grants that cannot spread (warehouse/migrations/0010, warehouse/bootstrap.py), on a real server
bootstrapped as every start bootstraps it: a working role that owns what it builds cannot share
it, cannot make a schema of its own, cannot write another step's audit rows, and no role reaches a
database it was not granted."""

from __future__ import annotations

import psycopg
import pytest

from demo.research_db import ensure_database

REFUSED = "refused for role {}: only the warehouse administrator grants and revokes"


def _as(warehouse, role: str, database: str | None = None) -> psycopg.Connection:
    return psycopg.connect(**warehouse.connect_kwargs(role, database), autocommit=True)


@pytest.fixture(scope="module")
def owned_tables(test_warehouse):
    """A raw table as dlt makes one (owned by loader) and a crosswalk table as dbt makes one
    (owned by transformer), each holding one row."""
    warehouse = test_warehouse.warehouse
    with _as(warehouse, "loader") as loader:
        loader.execute("create table raw_ehr.grants_probe (patient_id text)")
        loader.execute("insert into raw_ehr.grants_probe values ('P-1')")
    with _as(warehouse, "transformer") as transformer:
        transformer.execute("create table crosswalk.grants_probe (patient_key text)")
        transformer.execute("insert into crosswalk.grants_probe values ('K-1')")
    return {"loader": "raw_ehr.grants_probe", "transformer": "crosswalk.grants_probe"}


@pytest.mark.parametrize(
    ("role", "statement"),
    [
        ("loader", "grant select on {loader} to analyst"),
        ("loader", "grant select on {loader} to public"),
        ("loader", "grant usage on schema raw_ehr to analyst"),
        ("loader", "revoke select on {loader} from transformer"),
        ("loader", "alter default privileges in schema raw_ehr grant select on tables to analyst"),
        ("transformer", "grant select on {transformer} to analyst"),
        ("transformer", "grant select on {transformer} to loader with grant option"),
        ("transformer", "grant usage on schema crosswalk to analyst"),
        ("transformer", "alter default privileges grant select on tables to analyst"),
    ],
)
def test_an_owner_cannot_grant_or_revoke_what_it_owns(
    test_warehouse, owned_tables, role, statement
):
    refused = pytest.raises(psycopg.errors.InsufficientPrivilege, match=REFUSED.format(role))
    with _as(test_warehouse.warehouse, role) as conn, refused:
        conn.execute(statement.format(**owned_tables))
    with _as(test_warehouse.warehouse, "analyst") as analyst:
        for table in owned_tables.values():
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                analyst.execute(f"select * from {table}")


SHADOW = "view {}pg_roles as select session_user as rolname, true as rolsuper"


@pytest.mark.parametrize(
    ("role", "shadow"),
    [
        # a temporary view first on the search path (found by a hostile review of 0010)
        ("loader", f"create temporary {SHADOW.format('')}"),
        # a view in a schema the role owns, put first on its search path
        (
            "transformer",
            f"create {SHADOW.format('crosswalk.')}; set local search_path = crosswalk, pg_catalog",
        ),
    ],
)
def test_a_shadowed_catalog_does_not_talk_the_trigger_round(
    test_warehouse, owned_tables, role, shadow
):
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs(role)) as conn:
        conn.execute(shadow)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=REFUSED.format(role)):
            conn.execute(f"grant select on {owned_tables[role]} to analyst")
        conn.rollback()


def test_the_refusal_is_the_event_triggers(test_warehouse, owned_tables):
    """Without the trigger the owner's grant goes through and the analyst reads raw PHI: what the
    test above would catch if the trigger were dropped."""
    warehouse = test_warehouse.warehouse
    with _as(warehouse, warehouse.admin_user) as admin:
        admin.execute("alter event trigger refuse_grants_by_working_roles disable")
        try:
            with _as(warehouse, "loader") as loader:
                loader.execute("grant usage on schema raw_ehr to analyst")
                loader.execute(f"grant select on {owned_tables['loader']} to analyst")
            with _as(warehouse, "analyst") as analyst:
                assert analyst.execute(f"select count(*) from {owned_tables['loader']}").fetchone()
        finally:
            admin.execute(f"revoke select on {owned_tables['loader']} from analyst")
            admin.execute("revoke usage on schema raw_ehr from analyst")
            admin.execute("alter event trigger refuse_grants_by_working_roles enable")


def test_the_administrator_still_grants(test_warehouse, owned_tables):
    warehouse = test_warehouse.warehouse
    with _as(warehouse, warehouse.admin_user) as admin:
        admin.execute(f"grant select on {owned_tables['transformer']} to steward")
        admin.execute(f"revoke select on {owned_tables['transformer']} from steward")


@pytest.mark.parametrize("role", ["loader", "transformer", "steward", "analyst"])
def test_no_working_role_makes_a_schema(test_warehouse, role):
    refused = pytest.raises(
        psycopg.errors.InsufficientPrivilege, match="permission denied for database"
    )
    with _as(test_warehouse.warehouse, role) as conn, refused:
        conn.execute("create schema of_its_own")


def test_dlts_staging_datasets_are_there_for_the_loader(test_warehouse):
    """dlt makes `<dataset>_staging` only when it is missing: made by the migration, so landing
    needs no CREATE on the database."""
    with _as(test_warehouse.warehouse, "loader") as conn:
        owned = conn.execute(
            "select nspname from pg_namespace"
            " where nspname like 'raw\\_%%\\_staging' and pg_get_userbyid(nspowner) = 'loader'"
        ).fetchall()
    assert {name for (name,) in owned} == {
        f"raw_{dataset}_staging" for dataset in ("ehr", "claims", "vitals", "fhir", "research")
    }


@pytest.mark.parametrize("database", ["postgres", "research", "template1"])
@pytest.mark.parametrize("role", ["analyst", "loader", "clinical_ops"])
def test_no_role_connects_to_another_database(test_warehouse, role, database):
    ensure_database(test_warehouse.warehouse)  # the demo's research database, as make run has it
    with pytest.raises(
        psycopg.OperationalError, match=f'permission denied for database "{database}"'
    ):
        _as(test_warehouse.warehouse, role, database).close()


def test_the_research_reader_still_connects_to_its_database(test_warehouse):
    from demo.research_db import DATABASE, READER

    ensure_database(test_warehouse.warehouse)
    kwargs = test_warehouse.warehouse.connect_kwargs("analyst", DATABASE)
    kwargs.update(user=READER, password=_research_password())
    with psycopg.connect(**kwargs) as conn:
        assert conn.execute("select count(*) >= 0 from clinical_trials").fetchone() == (True,)


def _research_password() -> str:
    from common import settings

    return settings.require("RESEARCH_DB_PASSWORD")


GATE_ROW = (
    "insert into audit.{table} (run_id, checkpoint, {columns}) values ('grants', %s, {values})"
)
AUDIT_ROWS = {
    "gate_results": (
        "passed, expectations_evaluated, expectations_failed, details",
        "true, 0, 0, '[]'",
    ),
    "quality_scores": ("dimension, score, threshold, passed", "'validity', 1, 1, true"),
}


@pytest.mark.parametrize("table", sorted(AUDIT_ROWS))
@pytest.mark.parametrize(
    ("role", "own", "other"),
    [("loader", "landed", "publish_gate"), ("publisher", "publish_gate", "landed")],
)
def test_each_gate_records_only_its_own_checkpoint(test_warehouse, table, role, own, other):
    columns, values = AUDIT_ROWS[table]
    insert = GATE_ROW.format(table=table, columns=columns, values=values)
    with _as(test_warehouse.warehouse, role) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(insert, (other,))
        conn.execute(insert, (own,))
        # and the steward reads every checkpoint's rows
    with _as(test_warehouse.warehouse, "steward") as steward:
        seen = steward.execute(
            f"select count(*) from audit.{table} where run_id = 'grants' and checkpoint = %s",
            (own,),
        ).fetchone()[0]
    assert seen >= 1


@pytest.mark.parametrize("table", [*sorted(AUDIT_ROWS), "publications"])
def test_the_builder_records_no_verdict_and_no_publication(test_warehouse, table):
    """transformer builds; the gate's verdict and the publication are the publisher's."""
    if table == "publications":
        insert = "insert into audit.publications values ('grants', %s, '{}')"
    else:
        columns, values = AUDIT_ROWS[table]
        insert = GATE_ROW.format(table=table, columns=columns, values=values)
    refused = pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied")
    with _as(test_warehouse.warehouse, "transformer") as conn, refused:
        conn.execute(insert, ("publish_gate",))


@pytest.mark.parametrize(
    ("role", "statement"),
    [
        # the builder cannot put anything in front of analysts
        ("transformer", "create view analytics.of_its_own as select 1 as one"),
        # the publisher cannot change what it judges, nor read what no gate needs
        ("publisher", "create table build_blue.of_its_own (one int)"),
        ("publisher", "select * from crosswalk.grants_probe"),
        # nor read raw PHI, which it could put in front of analysts (0013)
        ("publisher", "select * from raw_ehr.grants_probe"),
        # large objects: storage no quota bounds, used by no one (0013)
        ("analyst", "select lo_from_bytea(0, 'x')"),
        ("loader", "select lo_create(0)"),
        ("publisher", "select * from quarantine.rejected_records"),
        ("publisher", "create schema of_its_own"),
    ],
)
def test_the_builder_and_the_publisher_keep_to_their_side(
    test_warehouse, owned_tables, role, statement
):
    refused = pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied")
    with _as(test_warehouse.warehouse, role) as conn, refused:
        conn.execute(statement)


def test_what_the_publisher_makes_in_analytics_the_analyst_selects(test_warehouse):
    """By the administrator's default privileges (0011): publishing grants nothing itself."""
    warehouse = test_warehouse.warehouse
    with _as(warehouse, "transformer") as transformer:
        transformer.execute("create table build_blue.published_probe as select 1 as one")
    with _as(warehouse, "publisher") as publisher:
        publisher.execute(
            "create view analytics.published_probe as select one from build_blue.published_probe"
        )
    try:
        with _as(warehouse, "analyst") as analyst:
            assert analyst.execute("select one from analytics.published_probe").fetchone() == (1,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                analyst.execute("select one from build_blue.published_probe")
    finally:
        with _as(warehouse, "publisher") as publisher:
            publisher.execute("drop view analytics.published_probe")
        with _as(warehouse, "transformer") as transformer:
            transformer.execute("drop table build_blue.published_probe")


def test_the_backup_reads_everything_and_writes_nothing(test_warehouse, owned_tables):
    """`backup` (pg_read_all_data, BYPASSRLS: warehouse/bootstrap.py) reads every table, the
    crosswalk and the row-secured audit tables included, as pg_dump must; it changes nothing."""
    with _as(test_warehouse.warehouse, "backup") as conn:
        for table in [*owned_tables.values(), "audit.gate_results", "quarantine.rejected_records"]:
            conn.execute(f"select count(*) from {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(f"insert into {owned_tables['transformer']} values ('K-2')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=REFUSED.format("backup")):
            conn.execute(f"grant select on {owned_tables['transformer']} to analyst")
