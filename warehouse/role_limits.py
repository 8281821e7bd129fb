"""Each login role's share of the server and what of it is recorded: its connection limit, its
session timeouts, its use of the reserved connections and the statements the server logs of it,
from warehouse/role_limits.yml, applied by `bootstrap` (ALTER ROLE and role membership: the
cluster's roles, not a database's migrations). A role's settings not in the file are reset, so
the file is the whole of them."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import yaml
from psycopg import sql

LIMITS_FILE = Path(__file__).with_name("role_limits.yml")
# the session settings a role may have here, each a PostgreSQL duration
TIMEOUTS = ("statement_timeout", "idle_in_transaction_session_timeout")
# the statements the server logs of a role's sessions (a superuser's setting: the role cannot
# change it in its session); warehouse/access_log.py reads the log
LOG_STATEMENT = ("none", "ddl", "mod", "all")
# the temporary files one session may write (PostgreSQL's temp_file_limit, a superuser setting
# the role cannot raise), a PostgreSQL size
TEMP_FILE_LIMIT = "temp_file_limit"
_SIZE = re.compile(r"^\d+(kB|MB|GB|TB)$")
# PostgreSQL 16+: connections kept for the members of this role (the server's
# reserved_connections); on an older server a role asking for them is an error
RESERVED = "pg_use_reserved_connections"
# the nice value (0-19) the embedded server's processes serving the role run at, set by the vitals
# processor (warehouse/cpu_priority.py), not by PostgreSQL
SETTINGS = {
    "connection_limit",
    *TIMEOUTS,
    TEMP_FILE_LIMIT,
    "log_statement",
    "reserved_connections",
    "cpu_nice",
}
_DURATION = re.compile(r"^\d+(ms|s|min|h|d)$")


class RoleLimitsError(ValueError):
    pass


def read_limits(path: Path = LIMITS_FILE) -> dict[str, dict]:
    """The file's limits, checked: a role's connection limit a whole number >= 1, each timeout a
    duration such as `5min`, nothing else. An error names the file, the role and the rule."""
    limits = yaml.safe_load(path.read_text()) or {}
    if not isinstance(limits, dict):
        raise RoleLimitsError(f"{path}: a mapping of role names to their limits")
    for role, settings in limits.items():
        if not isinstance(settings, dict):
            raise RoleLimitsError(f"{path}: {role}: a mapping of its limits")
        unknown = set(settings) - SETTINGS
        if unknown:
            raise RoleLimitsError(f"{path}: {role}: unknown setting(s) {sorted(unknown)}")
        limit = settings.get("connection_limit")
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
        ):
            raise RoleLimitsError(f"{path}: {role}: connection_limit must be a whole number >= 1")
        for timeout in TIMEOUTS:
            value = settings.get(timeout)
            if value is not None and not _DURATION.match(str(value)):
                raise RoleLimitsError(
                    f"{path}: {role}: {timeout} must be a duration such as 30s or 5min"
                )
        if settings.get("log_statement", "none") not in LOG_STATEMENT:
            raise RoleLimitsError(f"{path}: {role}: log_statement must be one of {LOG_STATEMENT}")
        size = settings.get(TEMP_FILE_LIMIT)
        if size is not None and not _SIZE.match(str(size)):
            raise RoleLimitsError(f"{path}: {role}: {TEMP_FILE_LIMIT} must be a size such as 1GB")
        nice = settings.get("cpu_nice", 0)
        if not isinstance(nice, int) or isinstance(nice, bool) or not 0 <= nice <= 19:
            raise RoleLimitsError(f"{path}: {role}: cpu_nice must be a whole number 0-19")
        if not isinstance(settings.get("reserved_connections", False), bool):
            raise RoleLimitsError(f"{path}: {role}: reserved_connections must be true or false")
    return limits


def _reserve(conn: psycopg.Connection, role: str, reserved: bool, path: Path) -> None:
    server_has_them = conn.execute(
        "select 1 from pg_roles where rolname = %s", (RESERVED,)
    ).fetchone()
    if not server_has_them:
        if reserved:
            raise RoleLimitsError(
                f"{path}: {role}: reserved_connections needs PostgreSQL 16 or later"
            )
        return
    verb = "grant {} to {}" if reserved else "revoke {} from {}"
    conn.execute(sql.SQL(verb).format(sql.Identifier(RESERVED), sql.Identifier(role)))


def apply_limits(conn: psycopg.Connection, roles: list[str], path: Path = LIMITS_FILE) -> None:
    """Set each of `roles` as the file says (as the administrator, autocommit)."""
    limits = read_limits(path)
    unknown = set(limits) - set(roles)
    if unknown:
        raise RoleLimitsError(f"{path}: no such role(s): {sorted(unknown)}")
    for role in roles:
        settings = limits.get(role, {})
        name = sql.Identifier(role)
        conn.execute(
            sql.SQL("alter role {} connection limit {}").format(
                name, sql.Literal(settings.get("connection_limit", -1))
            )
        )
        # the role's session defaults (ALTER ROLE ... SET), each reset when the file leaves it out
        for setting in (*TIMEOUTS, TEMP_FILE_LIMIT, "log_statement"):
            if setting in settings:
                conn.execute(
                    sql.SQL("alter role {} set {} = {}").format(
                        name, sql.Identifier(setting), sql.Literal(str(settings[setting]))
                    )
                )
            else:
                conn.execute(
                    sql.SQL("alter role {} reset {}").format(name, sql.Identifier(setting))
                )
        _reserve(conn, role, settings.get("reserved_connections", False), path)
