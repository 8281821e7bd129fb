"""Quarantine: rows that broke a rule wait here with their reason, readable only by stewards."""

from __future__ import annotations

import json
import logging

import pandas as pd
import psycopg

log = logging.getLogger(__name__)


def quarantine_rows(
    conn: psycopg.Connection,
    source: str,
    file_name: str,
    file_hash: str,
    rejected: pd.DataFrame,
    run_id: str,
) -> int:
    """Store the rejected rows (with `_position`, `_rule`, `_reason`) and log each one's rule."""
    if rejected.empty:
        return 0
    record_columns = [c for c in rejected.columns if not c.startswith("_")]
    records = rejected[record_columns].astype(object).where(rejected[record_columns].notna(), None)
    copy_sql = (
        "copy quarantine.rejected_records"
        " (source, file_name, file_hash, record_position, rule, reason, record, run_id)"
        " from stdin"
    )
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for position, rule, reason, record in zip(
            rejected["_position"],
            rejected["_rule"],
            rejected["_reason"],
            records.to_dict("records"),
            strict=True,
        ):
            copy.write_row(
                (
                    source,
                    file_name,
                    file_hash,
                    int(position),
                    rule,
                    reason,
                    json.dumps(record),
                    run_id,
                )
            )
            log.warning("%s: record %d: %s", file_name, position, reason)
    return len(rejected)
