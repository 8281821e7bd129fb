"""Versioned migrations: a warehouse main built before them (a committed dump) is upgraded with
nothing lost and ends with the same schema as a new one; migrations apply once, in order, and a
failing one changes nothing."""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from common import settings
from demo.claims_files import write_claims
from demo.ehr_extracts import write_extracts
from demo.fhir_resources import demo_resources
from demo.fhir_server import DEMO_SERVER_KEY
from orchestration.dag_settings import NON_IDENTIFIERS
from warehouse.backup import CLIENT_BIN
from warehouse.connection import Warehouse
from warehouse.migrate import MIGRATIONS_DIR, MigrationFailed, applied_migrations, migrate
from warehouse.phi_scan import (
    IdentifierIndex,
    known_non_identifiers,
    raw_identifiers,
    scan_files,
)

# the FHIR resource types the warehouse of before pulled (the dump's)
TYPES_PULLED_BEFORE = ("Patient", "Practitioner", "Encounter", "Observation")

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).with_name("fixtures")
DUMP = FIXTURES / "warehouse_d3b3bdf.sql.gz"
DUMP_ROW_COUNTS = FIXTURES / "warehouse_d3b3bdf_row_counts.tsv"
UPGRADED = "warehouse_before_migrations"

# What the product owns (the migrations make these) and what it lands (dlt makes the raw tables)
PRODUCT_SCHEMAS = ("audit", "quarantine", "monitoring")
KEPT_SCHEMAS = (*PRODUCT_SCHEMAS, "raw_ehr", "raw_claims", "raw_vitals", "raw_fhir", "raw_research")


def _connect(warehouse: Warehouse, database: str | None = None) -> psycopg.Connection:
    return psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user, database))


def _restore_dump(warehouse: Warehouse, database: str) -> None:
    """The dump into a new database, as the server held it (its database-level grants too)."""
    with _connect(warehouse, "postgres") as conn:
        conn.autocommit = True
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    env = {
        **os.environ,
        "PGHOST": warehouse.host,
        "PGPORT": str(warehouse.port),
        "PGUSER": warehouse.admin_user,
        "PGPASSWORD": warehouse.admin_password,
    }
    subprocess.run(
        [str(CLIENT_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database],
        input=gzip.decompress(DUMP.read_bytes()),
        env=env,
        capture_output=True,
        check=True,
    )
    with _connect(warehouse, database) as conn:
        name = sql.Identifier(database)
        conn.execute(sql.SQL("revoke connect, temporary on database {} from public").format(name))
        conn.execute(sql.SQL("grant all on database {} to loader, transformer").format(name))
        conn.execute(
            sql.SQL(
                "grant connect on database {} to steward, analyst, monitor, clinical_ops"
            ).format(name)
        )
        conn.execute(
            sql.SQL("alter role transformer in database {} set random_page_cost = 1.1").format(name)
        )


def _row_counts(warehouse: Warehouse, schemas: tuple[str, ...]) -> dict[str, int]:
    with _connect(warehouse) as conn:
        # a partitioned table counts its partitions' rows; a partition is not counted again
        tables = conn.execute(
            "select schemaname, tablename from pg_tables"
            " join pg_class on pg_class.oid = format('%%I.%%I', schemaname, tablename)::regclass"
            " where schemaname = any(%s) and not pg_class.relispartition",
            (list(schemas),),
        ).fetchall()
        return {
            f"{schema}.{table}": conn.execute(
                sql.SQL("select count(*) from {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            ).fetchone()[0]
            for schema, table in tables
        }


def schema_of(warehouse: Warehouse) -> dict[str, list[tuple]]:
    """What the migrations make, from the catalog: schemas with their owner and grants (a default
    grant, NULL in the catalog, as what it means: pg_dump restores it as NULL), and in the
    product's schemas every table's and view's columns, defaults, constraints, indexes, owners
    and grants (column grants too), the default privileges, the database's grants and settings.
    A partitioned table counts, its partitions (a day's, where there are rows of it) do not."""
    queries = {
        "schemas": """
            select nspname, pg_get_userbyid(nspowner),
                   coalesce(nspacl, acldefault('n', nspowner))::text[]
            from pg_namespace
            where nspname !~ '^pg_' and nspname <> 'information_schema'
              and nspname not like 'raw%%staging'""",
        "relations": """
            select n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner),
                   coalesce(c.relacl, acldefault((case c.relkind when 'S' then 's' else 'r' end)::"char",
                                                 c.relowner))::text[]
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'v', 'S', 'i', 'p', 'I')
              and not c.relispartition""",
        "columns": """
            select n.nspname, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                   a.attnotnull, a.attidentity, pg_get_expr(d.adbin, d.adrelid),
                   coalesce(a.attacl::text[], '{}')
            from pg_attribute a
            join pg_class c on c.oid = a.attrelid
            join pg_namespace n on n.oid = c.relnamespace
            left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'v', 'p')
              and not c.relispartition and a.attnum > 0 and not a.attisdropped""",
        "constraints": """
            select n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid)
            from pg_constraint k
            join pg_class c on c.oid = k.conrelid
            join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = any(%(schemas)s) and not c.relispartition""",
        "indexes": """
            select schemaname, tablename, indexname, indexdef
            from pg_indexes
            join pg_class c on c.oid = format('%%I.%%I', schemaname, tablename)::regclass
            where schemaname = any(%(schemas)s) and not c.relispartition""",
        "views": """
            select schemaname, viewname, definition
            from pg_views where schemaname = any(%(schemas)s)""",
        "default_privileges": """
            select pg_get_userbyid(defaclrole), coalesce(n.nspname, ''), defaclobjtype,
                   defaclacl::text[]
            from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace""",
        "database": """
            select datacl::text[] from pg_database where datname = current_database()""",
        "role_settings": """
            select pg_get_userbyid(s.setrole), s.setconfig
            from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
            where d.datname = current_database()""",
    }
    with _connect(warehouse) as conn:
        return {
            name: sorted(
                tuple(sorted(v) if isinstance(v, list) else v for v in row)
                for row in conn.execute(query, {"schemas": list(PRODUCT_SCHEMAS)})
            )
            for name, query in queries.items()
        }


# every migration, by name, in order
# The locked crosswalk's keys of FHIR records: (kind, the id or reference, its key)
FHIR_CROSSWALK_KEYS = """
select identifier_type, identifier, surrogate_key from crosswalk.identifier_crosswalk
where identifier_type in ('fhir_encounter', 'fhir_observation')
union all
select 'patient', substr(patient_id, 6), patient_key from crosswalk.patient_crosswalk
where patient_id like 'FHIR:%'
"""
MIGRATIONS = sorted(path.stem for path in MIGRATIONS_DIR.glob("[0-9]*.sql"))


@dataclasses.dataclass
class Upgrade:
    warehouse: Warehouse  # the restored dump of main before migrations, upgraded
    counts_before: dict[str, int]
    schema_before: dict
    outcome: object  # migrate's, of the baseline alone
    schema_after_baseline: dict
    later: object  # migrate's, of the migrations after the baseline
    counts_after: dict[str, int]
    schema_after: dict


@pytest.fixture(scope="module")
def upgraded(test_warehouse, tmp_path_factory) -> Upgrade:
    """The dump of main before migrations, restored beside the new warehouse; its row counts and
    schema before the upgrade; the baseline's outcome and the schema after it; the later
    migrations' outcome, and its row counts and schema after them (a test here runs `make run`
    on it)."""
    fresh = test_warehouse.warehouse
    before = dataclasses.replace(fresh, database=UPGRADED)
    _restore_dump(fresh, UPGRADED)
    counts_before = _row_counts(before, KEPT_SCHEMAS)
    schema_before = schema_of(before)
    baseline_only = tmp_path_factory.mktemp("baseline_only")
    (baseline_only / "0001_baseline.sql").write_text(
        (MIGRATIONS_DIR / "0001_baseline.sql").read_text()
    )
    outcome = migrate(before, baseline_only)
    schema_after_baseline = schema_of(before)
    later = migrate(before)
    return Upgrade(
        before,
        counts_before,
        schema_before,
        outcome,
        schema_after_baseline,
        later,
        _row_counts(before, KEPT_SCHEMAS),
        schema_of(before),
    )


def test_the_dump_restores_whole(upgraded):
    dumped = {}
    for line in DUMP_ROW_COUNTS.read_text().splitlines():
        schema, table, rows = line.split("\t")
        if schema in KEPT_SCHEMAS:
            dumped[f"{schema}.{table}"] = int(rows)
    assert upgraded.counts_before == dumped
    assert sum(dumped.values()) > 3000  # the demo's landed rows, ledger, alerts: not empty


def test_a_warehouse_built_before_migrations_is_upgraded_with_nothing_lost(upgraded):
    outcome = upgraded.outcome
    assert outcome.baseline and outcome.applied == ["0001_baseline"]
    # the baseline added, dropped or granted nothing that was not there
    assert upgraded.schema_after_baseline == upgraded.schema_before
    # then the later migrations, in order, once each, losing no row
    assert upgraded.later.applied == MIGRATIONS[1:] and not upgraded.later.baseline
    after, before = upgraded.counts_after, upgraded.counts_before
    assert {table: after.get(table) for table in before} == before
    # and tables of their own, empty: the first FHIR server's pull names its owner, the next
    # build records its allow-list and the list of vocabularies its vitals tables withheld against;
    # the vitals processor records each notification's delivery attempts and its baselines, and
    # clinical operations each patient's NEWS2 settings; its operational alerts
    assert {table: rows for table, rows in after.items() if table not in before} == {
        "audit.fhir_unkeyed_owner": 0,
        "audit.published_columns": 0,
        "audit.withheld_vocabularies": 0,
        "monitoring.delivery_attempts": 0,
        "monitoring.baseline_requests": 0,
        "monitoring.news2_settings": 0,
        "monitoring.operational_alerts": 0,
        # each build's FHIR reference resolution, counted (0024)
        "audit.fhir_reference_counts": 0,
    }
    assert applied_migrations(upgraded.warehouse) == MIGRATIONS
    assert migrate(upgraded.warehouse).applied == []  # applied once


def test_a_new_and_an_upgraded_warehouse_have_the_same_schema(upgraded, test_warehouse):
    new, old = schema_of(test_warehouse.warehouse), upgraded.schema_after
    # dbt's schemas exist in both; the old one has dlt's staging schemas, left out above
    for part in new:
        assert new[part] == old[part], part
    assert len(new["relations"]) > 30 and len(new["columns"]) > 150


def test_the_schema_comparison_sees_a_missing_column_and_a_missing_grant(upgraded):
    before = upgraded.warehouse
    reference = schema_of(before)
    with _connect(before) as conn:
        conn.execute("alter table audit.publications add column spare text")
        conn.execute("revoke select on audit.publications from steward")
    try:
        changed = schema_of(before)
        assert changed["columns"] != reference["columns"]
        assert changed["relations"] != reference["relations"]
    finally:
        with _connect(before) as conn:
            conn.execute("alter table audit.publications drop column spare")
            conn.execute("grant select on audit.publications to steward")
    assert schema_of(before)["relations"] == reference["relations"]


def test_migrations_apply_once_in_order_and_a_failing_one_changes_nothing(test_warehouse, tmp_path):
    warehouse = test_warehouse.warehouse
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_baseline.sql").write_text((MIGRATIONS_DIR / "0001_baseline.sql").read_text())
    (folder / "0002_first.sql").write_text(
        "create table audit.migration_probe (step text);\n"
        "insert into audit.migration_probe values ('0002');\n"
    )
    (folder / "0003_second.sql").write_text("insert into audit.migration_probe values ('0003');\n")
    assert migrate(warehouse, folder).applied == ["0002_first", "0003_second"]
    assert migrate(warehouse, folder).applied == []
    (folder / "0004_broken.sql").write_text(
        "insert into audit.migration_probe values ('0004');\n"
        "alter table audit.no_such_table add column x text;\n"
    )
    with pytest.raises(MigrationFailed, match="0004_broken.sql"):
        migrate(warehouse, folder)
    with _connect(warehouse) as conn:
        steps = [row[0] for row in conn.execute("select step from audit.migration_probe")]
        conn.execute("drop table audit.migration_probe")
        conn.execute(
            "delete from public._yoyo_migration where migration_id in ('0002_first', '0003_second')"
        )
    assert steps == ["0002", "0003"]  # 0004's insert rolled back with it
    assert applied_migrations(warehouse) == MIGRATIONS


@dataclasses.dataclass
class MadeRun:
    run: subprocess.CompletedProcess
    var: Path  # its HEALTHCARE_VAR_DIR
    fhir_keys_before: list[tuple]
    anchors_before: list[tuple]


@pytest.fixture(scope="module")
def made_run(upgraded, tmp_path_factory) -> MadeRun:
    """`make run` (hcw run) on the upgraded warehouse, with a var folder of its own."""
    before = upgraded.warehouse
    var = tmp_path_factory.mktemp("made_run") / "var"
    env = {
        **os.environ,
        "WAREHOUSE_URL": before.admin_url(),
        "HEALTHCARE_VAR_DIR": str(var),
        "DLT_DATA_DIR": str(var / "dlt"),
        "LANDING_DIR": str(var / "landing"),
        "ARCHIVE_DIR": str(var / "archive"),
        "QUARANTINE_DIR": str(var / "quarantine"),
    }
    env.pop("FHIR_BASE_URL", None)
    env.pop("RESEARCH_DB_HOST", None)
    # new extracts waiting, as a hospital's next day sends them (the dump's were landed before)
    new_day = {"files": 1, "defects_per_file": 0, "first_day": date(2024, 6, 1), "seed": 41}
    write_extracts(var / "landing" / "ehr", rows=30, **new_day)
    write_claims(var / "landing" / "claims", claims=20, **new_day)
    with _connect(before) as conn:
        fhir_keys_before = conn.execute(FHIR_CROSSWALK_KEYS).fetchall()
        anchors_before = conn.execute(
            "select patient_id, anchor_at from crosswalk.patient_anchors"
        ).fetchall()
    run = subprocess.run(
        [sys.executable, "-m", "cli", "run"],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    return MadeRun(run, var, fhir_keys_before, anchors_before)


def test_make_run_passes_on_the_upgraded_warehouse(upgraded, made_run):
    before, counts_before = upgraded.warehouse, upgraded.counts_before
    run, fhir_keys_before, anchors_before = (
        made_run.run,
        made_run.fhir_keys_before,
        made_run.anchors_before,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"quality gate: +PASS", run.stdout), run.stdout[-3000:]
    after = _row_counts(before, KEPT_SCHEMAS)
    assert all(after[table] >= rows for table, rows in counts_before.items())
    assert applied_migrations(before) == MIGRATIONS
    # the FHIR resources pulled before servers were keyed are the demo server's (make run's, its
    # first and only server), pulled from where they were: none landed twice
    with _connect(before) as conn:
        servers, rows, distinct = conn.execute(
            "select array_agg(distinct server), count(*), count(distinct (resource_type, id))"
            " from raw_fhir.resources"
        ).fetchone()
        cursors_from = conn.execute(
            "select array_agg(distinct cursor_from is not null) from audit.api_pulls"
            " where source = 'fhir' and server = %s and resource_type = any(%s)",
            # the types pulled before; those added since (Condition, ...) are pulled in full
            (DEMO_SERVER_KEY, list(TYPES_PULLED_BEFORE)),
        ).fetchone()[0]
    assert servers == [DEMO_SERVER_KEY] and rows == distinct == after["raw_fhir.resources"]
    # and those the demo server gained since (its hospitals and inpatient stays), once
    gained = len(demo_resources()) - len(demo_resources(stays=False))
    assert rows == counts_before["raw_fhir.resources"] + gained
    assert cursors_from == [True]
    # the locked crosswalk's FHIR ids are the demo server's references, each with its key of before
    with _connect(before) as conn:
        fhir_keys_after = set(conn.execute(FHIR_CROSSWALK_KEYS).fetchall())
    kinds = {"fhir_encounter": "Encounter", "fhir_observation": "Observation", "patient": "Patient"}
    assert fhir_keys_before and all("/" not in identifier for _, identifier, _ in fhir_keys_before)
    assert {
        (kind, f"{DEMO_SERVER_KEY}/{kinds[kind]}/{identifier}", key)
        for kind, identifier, key in fhir_keys_before
    } <= fhir_keys_after
    # every anchor kept, each with an hour anchor a random part of a day before it (issue 20), and
    # version 1's published relations replaced: no year beside a patient key reaches analysts
    with _connect(before) as conn:
        anchors_after = conn.execute(
            "select patient_id, anchor_at, hour_anchor_at from crosswalk.patient_anchors"
        ).fetchall()
        years = conn.execute(
            "select count(*) from information_schema.columns as years"
            " where years.table_schema = 'analytics' and years.column_name like '%\\_year'"
            " and exists (select 1 from information_schema.columns as keyed"
            " where keyed.table_schema = 'analytics' and keyed.table_name = years.table_name"
            " and keyed.column_name = 'patient_key')"
        ).fetchone()[0]
    assert anchors_before
    assert set(anchors_before) <= {(patient, anchor) for patient, anchor, _ in anchors_after}
    assert all(
        anchor - timedelta(days=1) < hour_anchor <= anchor
        for _, anchor, hour_anchor in anchors_after
    )
    assert years == 0


def test_make_run_leaves_no_phi_readable_by_others_or_kept_past_its_load(upgraded, made_run):
    """After `make run`: nothing under var/ is readable by another user (var/ 0711, folders
    0700, files 0600), dlt keeps no completed load package, and the PHI scan finds no raw
    identifier in any text file under var/ but the landing, archive and quarantine folders (which
    hold the files received, owner-only). docs/deidentification.md, "PHI at rest"."""
    assert made_run.run.returncode == 0, made_run.run.stdout[-3000:]
    var = made_run.var
    assert oct(var.stat().st_mode & 0o777) == "0o711"
    readable = [
        str(path.relative_to(var))
        for path in var.rglob("*")
        if not path.is_symlink() and path.stat().st_mode & 0o077
    ]
    assert readable == [], readable[:20]
    pipelines = sorted((var / "dlt" / "pipelines").iterdir())
    assert {p.name for p in pipelines} >= {"ehr_files", "claims_files", "fhir_api", "research_db"}
    kept = [
        str(package.relative_to(var))
        for pipeline in pipelines
        for folder in ("load/loaded", "load/normalized", "load/new", "normalize/extracted")
        if (pipeline / folder).exists()
        for package in (pipeline / folder).iterdir()
    ]
    assert kept == []
    index = IdentifierIndex(raw_identifiers(upgraded.warehouse))
    assert index.count > 500
    received = {"landing", "archive", "quarantine"}
    scanned = [folder for folder in sorted(var.iterdir()) if folder.name not in received]
    assert {folder.name for folder in scanned} >= {"dlt", "logs", "airflow", "gx"}
    non_identifiers = known_non_identifiers(upgraded.warehouse, NON_IDENTIFIERS)
    found = [
        (str(Path(f.relation).relative_to(var)), f.identifier_class)
        for f in scan_files(scanned, index, non_identifiers)
        # dbt's manifest is the project's code, copied (Cosmos's, the build plan's): its unit
        # tests' fixtures write ids and dates of the demo's shape (PAT_10001), not data
        if Path(f.relation).name != "manifest.json"
    ]
    assert found == [], "\n".join(map(str, found))


def test_0005_records_the_server_that_named_the_unkeyed_fhir_resources_before_it(
    test_warehouse, tmp_path
):
    """A warehouse upgraded to FHIR servers before 0005 kept no record of whose its unkeyed FHIR
    resources became: the first keyed pull after them (another server's pull is refused until
    then); a warehouse that never had unkeyed pulls records no one."""
    fresh = test_warehouse.warehouse
    before_0005 = tmp_path / "before_0005"
    before_0005.mkdir()
    for path in MIGRATIONS_DIR.glob("000[1-4]_*.sql"):
        (before_0005 / path.name).write_text(path.read_text())
    owners = {}
    for database, pulls in {
        "fhir_unkeyed_then_keyed": [(None, 1), ("https://a.example/fhir", 2), ("https://b", 3)],
        "fhir_keyed_only": [("https://b", 1), ("https://a.example/fhir", 2)],
    }.items():
        with _connect(fresh, "postgres") as conn:
            conn.autocommit = True
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
        warehouse = dataclasses.replace(fresh, database=database)
        migrate(warehouse, before_0005)
        with _connect(warehouse) as conn:
            for server, hour in pulls:
                conn.execute(
                    "insert into audit.api_pulls (run_id, source, server, resource_type, pages,"
                    " requests, rows_received, rows_loaded, rows_quarantined, rows_superseded,"
                    " recorded_at) values ('r', 'fhir', %s, 'Patient', 1, 1, 1, 1, 0, 0,"
                    " timestamptz '2026-01-01 00:00:00+00' + %s * interval '1 hour')",
                    (server, hour),
                )
        assert migrate(warehouse).applied == [m for m in MIGRATIONS if m >= "0005"]
        with _connect(warehouse) as conn:
            owners[database] = conn.execute(
                "select server, resources from audit.fhir_unkeyed_owner"
            ).fetchall()
    assert owners == {
        "fhir_unkeyed_then_keyed": [("https://a.example/fhir", None)],
        "fhir_keyed_only": [],
    }
