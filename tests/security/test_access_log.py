"""The record of access (warehouse/access_log.py) and the reserved connections, on a real embedded
server started as every start starts it: an analyst's statement is in the owner-only log with the
role and the time, the analyst cannot turn the record off, and the vitals processor and the
loader still connect when every other connection is taken."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from warehouse import access_log


def _connect(warehouse, role: str) -> psycopg.Connection:
    return psycopg.connect(**warehouse.connect_kwargs(role), autocommit=True)


def _recorded(pgdata, role: str, since: datetime, text: str) -> list[access_log.AccessRecord]:
    """The records of `role` since `since` whose text holds `text`, waiting a little for the
    logging collector to write them."""
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in access_log.records(pgdata, role, since) if text in r.what]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_an_analysts_select_is_on_record_with_its_role_and_time(test_warehouse):
    pgdata = test_warehouse.var_dir / "pgdata"
    marker = f"access-{uuid.uuid4()}"
    started = datetime.now(UTC) - timedelta(seconds=1)
    with _connect(test_warehouse.warehouse, "analyst") as conn:
        conn.execute(f"select '{marker}' as asked")
    [statement] = _recorded(pgdata, "analyst", started, marker)
    assert statement.what == f"statement: select '{marker}' as asked"
    assert statement.role == "analyst" and statement.database == "warehouse"
    assert started <= statement.at <= datetime.now(UTC)
    # the session it ran in: its connection and its end
    session = [r.what for r in access_log.records(pgdata, "analyst", started)
               if r.session == statement.session]  # fmt: skip
    assert any(what.startswith("connection authorized: user=analyst") for what in session)
    assert _recorded(pgdata, "analyst", started, "disconnection: session time")


def test_a_record_is_one_line_with_the_statements_parameters(test_warehouse):
    """A statement cannot print a record of its own (its line breaks and control characters are
    escaped), and the values it was given are in its record (found by a hostile review)."""
    pgdata = test_warehouse.var_dir / "pgdata"
    marker = f"forged-{uuid.uuid4()}"
    started = datetime.now(UTC) - timedelta(seconds=1)
    forged = f"2026-12-07T02:00:00+00:00  steward@warehouse  1.1  statement: select {marker}"
    with _connect(test_warehouse.warehouse, "analyst") as conn:
        conn.execute(f"select 1 /* \n{forged} \x1b[2K */")
        conn.execute("select %s::text as asked", (marker,))
    [comment] = _recorded(pgdata, "analyst", started, f"select {marker}")
    assert "\n" not in comment.line() and "\x1b" not in comment.line()
    assert "\\n2026-12-07T02:00:00" in comment.line()
    [given] = _recorded(pgdata, "analyst", started, "$1::text as asked")
    assert marker in given.line()  # Parameters: $1 = '...'


def test_other_roles_sessions_are_recorded_but_not_their_statements(test_warehouse):
    pgdata = test_warehouse.var_dir / "pgdata"
    marker = f"loading-{uuid.uuid4()}"
    started = datetime.now(UTC) - timedelta(seconds=1)
    with _connect(test_warehouse.warehouse, "loader") as conn:
        conn.execute(f"select '{marker}'")
    assert _recorded(pgdata, "loader", started, "connection authorized: user=loader")
    assert not [r for r in access_log.records(pgdata, "loader", started) if marker in r.what]


def test_the_analyst_cannot_turn_the_record_off(test_warehouse):
    with _connect(test_warehouse.warehouse, "analyst") as conn:
        assert conn.execute("show log_statement").fetchone() == ("all",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("set log_statement = 'none'")
        with pytest.raises(psycopg.errors.CantChangeRuntimeParam):
            conn.execute("set log_connections = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("alter role analyst set log_statement = 'none'")


def test_the_log_is_owner_only(test_warehouse):
    folder = access_log.log_folder(test_warehouse.var_dir / "pgdata")
    owner = folder.parent.stat().st_uid  # the server's account
    files = sorted(folder.iterdir())
    assert files
    assert (folder.stat().st_mode & 0o777, folder.stat().st_uid) == (0o700, owner)
    for path in files:
        assert (path.stat().st_mode & 0o777, path.stat().st_uid) == (0o600, owner), path.name


def test_the_processor_and_the_loader_connect_when_only_the_reserved_are_left(test_warehouse):
    """Every unreserved connection taken (by the steward, who has no limit of its own): the
    analyst is refused, the vitals processor and the loader still connect."""
    warehouse = test_warehouse.warehouse
    held: list[psycopg.Connection] = []
    try:
        with pytest.raises(psycopg.OperationalError, match="reserved for roles"):
            for _ in range(200):
                held.append(_connect(warehouse, "steward"))
        with pytest.raises(psycopg.OperationalError, match="reserved for roles"):
            _connect(warehouse, "analyst")
        for role in ("monitor", "loader"):
            with _connect(warehouse, role) as conn:
                assert conn.execute("select current_user").fetchone() == (role,)
    finally:
        for conn in held:
            conn.close()
