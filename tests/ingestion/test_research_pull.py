"""The research database, pulled incrementally with dlt's sql_database source: updated and
inserted rows are merged on the next run, nothing else is loaded again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from demo.research_db import DATABASE, ensure_database, fill
from ingestion.sources.research_db import land_research

pytestmark = pytest.mark.e2e


def _research(test_warehouse, statement: str, *params) -> None:
    warehouse = test_warehouse.warehouse
    with psycopg.connect(**warehouse.connect_kwargs(warehouse.admin_user, DATABASE)) as conn:
        conn.execute(statement, params)


def _raw(test_warehouse, query: str) -> list[tuple]:
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture(scope="module")
def first_pull(test_warehouse) -> dict[str, int]:
    """60 trials in the research database, pulled once: every test pulls after it."""
    ensure_database(test_warehouse.warehouse)
    fill(test_warehouse.warehouse, trials=60)
    return land_research(test_warehouse.warehouse, "research_1")


def test_updated_and_inserted_trials_are_merged_on_the_next_run(test_warehouse, first_pull):
    assert first_pull == {"received": 60, "loaded": 60}
    assert land_research(test_warehouse.warehouse, "research_2") == {"received": 0, "loaded": 0}

    now = datetime.now(UTC)
    _research(
        test_warehouse,
        "update clinical_trials set completion_status = 'withdrawn', updated_at = %s"
        " where trial_id = 'TRIAL_00007'",
        now,
    )
    _research(
        test_warehouse,
        "insert into clinical_trials select 'TRIAL_99999', patient_id, enrollment_date,"
        " treatment_arm, 1.5, secondary_endpoints, adverse_events, 'enrolled', %s"
        " from clinical_trials where trial_id = 'TRIAL_00001'",
        now,
    )
    third = land_research(test_warehouse.warehouse, "research_3")
    assert third == {"received": 2, "loaded": 2}
    assert _raw(
        test_warehouse,
        "select count(*), count(distinct trial_id) from raw_research.clinical_trials",
    ) == [(61, 61)]
    changed = _raw(
        test_warehouse,
        "select trial_id, completion_status from raw_research.clinical_trials"
        " where _pulled_in = 'research_3' order by trial_id",
    )
    assert changed == [("TRIAL_00007", "withdrawn"), ("TRIAL_99999", "enrolled")]


def test_the_research_password_never_reaches_the_logs(test_warehouse, first_pull, caplog):
    import logging
    import os

    caplog.set_level(logging.DEBUG)
    land_research(test_warehouse.warehouse, "research_logged")
    assert "research clinical_trials: received" in caplog.text
    assert os.environ["RESEARCH_DB_PASSWORD"] not in caplog.text
