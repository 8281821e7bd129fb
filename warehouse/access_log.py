"""The record of who reached the warehouse and what analysts asked of it (HIPAA's audit controls,
45 CFR 164.312(b)): every session of every role, and every statement of a role whose
`log_statement` warehouse/role_limits.yml sets (`analyst`: all). `log_statement` set for a role
is the administrator's (a superuser parameter): an analyst's session cannot turn it off.

The embedded server writes its log through PostgreSQL's logging collector as JSON lines, a file a
day or per 100 MB, into `var/pgdata/server_log/` (owner-only: log_file_mode 0600 in a 0700
folder); the maintenance DAG deletes a file past its retention (airflow/orchestration.yml,
`retention_days.access_log`). A server of WAREHOUSE_URL is its operator's to set the same way
(docs/runbook.md, "Who queried what"). `hcw access-log` prints the records.

    hcw access-log --role analyst --since 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from common.settings import SERVER_LOG_FOLDER

# The embedded server's logging and connection settings, written into its data folder at every
# start (warehouse/embedded.py) and included from postgresql.conf.
SERVER_SETTINGS = f"""\
# Written by warehouse.embedded at every start (warehouse/access_log.py): edit there.
logging_collector = on
log_destination = 'jsonlog'
log_directory = '{SERVER_LOG_FOLDER}'
log_filename = 'postgresql-%Y-%m-%d_%H%M%S.log'
log_file_mode = 0600
log_timezone = 'UTC'
log_rotation_age = 1d
# a file a day, or sooner at 100 MB: a flood of analyst statements makes more files, each one
# deleted by its age (retention_days.access_log), never a file too large to read
log_rotation_size = 100MB
log_connections = on
log_disconnections = on
# connections only roles granted pg_use_reserved_connections may take (role_limits.yml): the
# vitals processor and the loader still connect when analysts hold all theirs
reserved_connections = 10
"""


@dataclass(frozen=True)
class AccessRecord:
    at: datetime
    role: str
    database: str
    session: str  # PostgreSQL's session id: a session's connection and statements share it
    what: str  # "connection authorized: ...", "statement: select ...", "disconnection: ..."
    detail: str = ""  # a statement's parameters ("Parameters: $1 = '...'"), when it had some

    def line(self) -> str:
        """One line, whatever the statement holds: its line breaks and control characters
        escaped, so that no statement can print a record of its own or steer the terminal."""
        text = self.what + (f"  [{self.detail}]" if self.detail else "")
        return f"{self.at.isoformat()}  {self.role}@{self.database}  {self.session}  " + "".join(
            c if c.isprintable() else repr(c)[1:-1] for c in text
        )


def log_folder(pgdata: Path) -> Path:
    return pgdata / SERVER_LOG_FOLDER


def _parsed(line: str) -> AccessRecord | None:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None  # a line the collector was still writing
    if "user" not in entry or "message" not in entry:
        return None  # the server's own messages
    return AccessRecord(
        # "2026-12-07 01:40:00.123 UTC" (log_timezone is UTC)
        at=datetime.strptime(entry["timestamp"][:23], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC),
        role=entry["user"],
        database=entry.get("dbname", ""),
        session=entry.get("session_id", ""),
        what=entry["message"],
        detail=entry.get("detail", ""),
    )


def records(
    pgdata: Path, role: str | None = None, since: datetime | None = None
) -> Iterator[AccessRecord]:
    """The log's records of sessions and statements, oldest first; of `role` only, from `since`
    (UTC when it says no zone)."""
    if since and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    for path in sorted(log_folder(pgdata).glob("postgresql-*.json")):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                record = _parsed(line)
                if record is None or (role and record.role != role):
                    continue
                if since and record.at < since:
                    continue
                yield record
