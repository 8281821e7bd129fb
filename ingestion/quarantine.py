"""Quarantine: records that broke a rule wait here with their reason, readable only by loader
and stewards. Each keeps the raw record, its file, its position (0: the whole file), the rule
and when. dlt's own `discard_row` would drop them; nothing here is ever dropped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import psycopg

log = logging.getLogger(__name__)

LOGGED_PER_FILE = 50  # every record is quarantined; only the first ones are also logged


@dataclass(frozen=True)
class QuarantinedRecord:
    position: int
    rule: str
    reason: str  # rule and column names only: never a value
    record: dict[str, Any]


def quarantine_records(
    conn: psycopg.Connection,
    source: str,
    file_name: str,
    file_hash: str,
    records: list[QuarantinedRecord],
    run_id: str,
) -> int:
    """Store `records` in quarantine.rejected_records, in the caller's transaction."""
    copy_sql = (
        "copy quarantine.rejected_records"
        " (source, file_name, file_hash, record_position, rule, reason, record, run_id)"
        " from stdin"
    )
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for number, item in enumerate(records):
            copy.write_row(
                (
                    source,
                    file_name,
                    file_hash,
                    item.position,
                    item.rule,
                    item.reason,
                    json.dumps(item.record, default=str),
                    run_id,
                )
            )
            if number < LOGGED_PER_FILE:
                log.warning("%s: record %d: %s", file_name, item.position, item.reason)
    if len(records) > LOGGED_PER_FILE:
        log.warning("%s: %d more records quarantined", file_name, len(records) - LOGGED_PER_FILE)
    return len(records)
