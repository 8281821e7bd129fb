"""What the FHIR pull tests share: the demo servers' client, a retry policy fast enough for a
test, and reading back what landed as the steward."""

from __future__ import annotations

import psycopg

from ingestion.http_client import RetryPolicy

CLIENT_ID, CLIENT_SECRET = "warehouse-test", "fhir-test-secret"
FAST = RetryPolicy(base_delay=0.02, max_delay=0.2, failures_to_open=6, timeout=2)


def rows(test_warehouse, query: str, *params) -> list[tuple]:
    """`query`'s rows, read as the steward (raw, quarantine and audit)."""
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        return conn.execute(query, params).fetchall()
