"""What a login role may hold of the server (warehouse/role_limits.yml, applied by bootstrap):
the analyst's connections beyond its limit are refused and its statements and idle transactions
end at their timeouts, on a real server bootstrapped as every start bootstraps it."""

from __future__ import annotations

import time

import psycopg
import pytest

from warehouse.connection import ROLE_PASSWORD_VARIABLES
from warehouse.role_limits import RoleLimitsError, apply_limits, read_limits


def _admin(warehouse) -> psycopg.Connection:
    return psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user), autocommit=True)


def _analyst(warehouse) -> psycopg.Connection:
    return psycopg.connect(**warehouse.connect_kwargs("analyst"), autocommit=True)


def test_the_analysts_connections_beyond_its_limit_are_refused(test_warehouse):
    warehouse = test_warehouse.warehouse
    limit = read_limits()["analyst"]["connection_limit"]
    held = [_analyst(warehouse) for _ in range(limit)]
    try:
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            _analyst(warehouse)
        # the loader still connects: the limit is the analyst's own
        with psycopg.connect(**warehouse.connect_kwargs("loader")) as loader:
            assert loader.execute("select 1").fetchone() == (1,)
    finally:
        for conn in held:
            conn.close()


def test_the_analysts_sessions_carry_the_files_timeouts(test_warehouse):
    limits = read_limits()["analyst"]
    with _analyst(test_warehouse.warehouse) as conn:
        for timeout in ("statement_timeout", "idle_in_transaction_session_timeout"):
            shown = conn.execute(f"show {timeout}").fetchone()[0]
            assert shown == limits[timeout], timeout
    # a role the file leaves out has PostgreSQL's defaults
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("loader")) as conn:
        assert conn.execute("show statement_timeout").fetchone()[0] == "0"


def test_the_analysts_temporary_files_stop_at_the_files_limit(test_warehouse):
    """A query that would materialize billions of rows ended at the limit (one filled this
    machine's disk without it), which the analyst cannot raise."""
    limit = read_limits()["analyst"]["temp_file_limit"]
    with _analyst(test_warehouse.warehouse) as conn:
        assert conn.execute("show temp_file_limit").fetchone() == (limit,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("set temp_file_limit = -1")
        conn.execute("set work_mem = '64kB'")  # spill at once
        with pytest.raises(
            psycopg.errors.ConfigurationLimitExceeded, match="exceeds .temp_file_limit"
        ):
            conn.execute("select count(*) from generate_series(1, 10000000000)")


def test_a_statement_past_the_timeout_is_cancelled(test_warehouse, tmp_path):
    warehouse = test_warehouse.warehouse
    short = tmp_path / "role_limits.yml"
    short.write_text("analyst:\n  connection_limit: 5\n  statement_timeout: 1s\n")
    roles = list(ROLE_PASSWORD_VARIABLES)
    with _admin(warehouse) as admin:
        apply_limits(admin, roles, short)
    try:
        with _analyst(warehouse) as conn:
            started = time.monotonic()
            with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
                conn.execute("select pg_sleep(10)")
            assert time.monotonic() - started < 5
            # what the file no longer names is reset
            assert conn.execute("show idle_in_transaction_session_timeout").fetchone()[0] == "0"
    finally:
        with _admin(warehouse) as admin:
            apply_limits(admin, roles)


def test_an_analyst_resetting_its_role_keeps_the_audit_and_the_limits(test_warehouse):
    warehouse = test_warehouse.warehouse
    limits = read_limits()["analyst"]
    with _analyst(warehouse) as conn:
        conn.execute("alter role analyst reset all")  # PostgreSQL lets a role do this
        for statement in (
            "alter role analyst set log_statement = 'none'",
            "alter role analyst reset log_statement",
            "alter role analyst set temp_file_limit = -1",
            "alter role analyst connection limit 1000",
            "set log_statement = 'none'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    try:
        with _analyst(warehouse) as conn:
            # the superuser's settings stayed: the audit and the temporary files' limit
            assert conn.execute("show log_statement").fetchone()[0] == "all"
            assert conn.execute("show temp_file_limit").fetchone()[0] == limits["temp_file_limit"]
            # what went are defaults the analyst could lift in any session anyway
            assert conn.execute("show statement_timeout").fetchone()[0] == "0"
        with _admin(warehouse) as admin:
            limit = admin.execute(
                "select rolconnlimit from pg_roles where rolname = 'analyst'"
            ).fetchone()[0]
        assert limit == limits["connection_limit"]
    finally:
        # every start applies the file again
        with _admin(warehouse) as admin:
            apply_limits(admin, list(ROLE_PASSWORD_VARIABLES))
    with _analyst(warehouse) as conn:
        assert conn.execute("show statement_timeout").fetchone()[0] == limits["statement_timeout"]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("analyst:\n  connection_limit: 0\n", "analyst: connection_limit must be a whole number"),
        ("analyst:\n  statement_timeout: soon\n", "analyst: statement_timeout must be a duration"),
        ("analyst:\n  work_mem: 1GB\n", "analyst: unknown setting"),
        ("nobody:\n  connection_limit: 3\n", "no such role"),
        ("analyst:\n  log_statement: everything\n", "analyst: log_statement must be one of"),
        ("monitor:\n  reserved_connections: 3\n", "monitor: reserved_connections must be"),
        ("analyst:\n  cpu_nice: 20\n", "analyst: cpu_nice must be a whole number 0-19"),
        ("analyst:\n  temp_file_limit: lots\n", "analyst: temp_file_limit must be a size"),
    ],
)
def test_a_wrong_limits_file_is_refused_naming_the_file_and_the_rule(tmp_path, text, rule):
    path = tmp_path / "role_limits.yml"
    path.write_text(text)

    class NoConnection:  # refused before any statement
        def execute(self, *args, **kwargs):
            raise AssertionError("a statement was run")

    with pytest.raises(RoleLimitsError, match=rule) as refused:
        apply_limits(NoConnection(), list(ROLE_PASSWORD_VARIABLES), path)
    assert str(path) in str(refused.value)
