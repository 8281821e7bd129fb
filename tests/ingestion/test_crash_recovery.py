"""A loader killed (SIGKILL) in the middle of a large file, then run again: every record is in
the raw tables exactly once, and the counts reconcile.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from common import settings
from demo.ehr_extracts import write_large_extract
from ingestion import ledger
from ingestion.file_source import land
from ingestion.sources.ehr_files import EHR_FILES

pytestmark = pytest.mark.e2e

ROWS = 600_000
LAND_IN_A_CHILD = (
    "import logging; logging.basicConfig(level=logging.INFO)\n"
    "from ingestion.file_source import land\n"
    "from ingestion.sources.ehr_files import EHR_FILES\n"
    "from warehouse.connection import from_environment\n"
    "land(EHR_FILES, from_environment(), 'killed_run')\n"
)


def _raw_rows(conn: psycopg.Connection, file_key: int) -> int:
    if not conn.execute("select to_regclass('raw_ehr.encounters')").fetchone()[0]:
        return 0
    return conn.execute(
        "select count(*) from raw_ehr.encounters where _file_key = %s", (file_key,)
    ).fetchone()[0]


def test_loader_killed_mid_file_then_rerun_lands_each_record_exactly_once(test_warehouse):
    path = test_warehouse.landing_dir / "ehr" / "ehr_2024-07-01_001.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_large_extract(path, ROWS)
    file_hash = ledger.content_hash(path)
    file_key = ledger.file_key(file_hash)

    child = subprocess.Popen(
        [sys.executable, "-c", LAND_IN_A_CHILD],
        cwd=settings.PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(settings.PROJECT_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows_at_kill = 0
    with psycopg.connect(
        **test_warehouse.warehouse.connect_kwargs("steward"), autocommit=True
    ) as conn:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and child.poll() is None:
            rows_at_kill = _raw_rows(conn, file_key)
            if rows_at_kill:  # some load jobs have committed, the file is not finished
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        child.wait()
        recorded = conn.execute(
            "select count(*) from audit.file_ledger where file_hash = %s", (file_hash,)
        ).fetchone()[0]
    assert child.returncode == -signal.SIGKILL, "the loader finished before it could be killed"
    assert 0 < rows_at_kill and recorded == 0, "killed mid-load: rows landed, file not recorded"
    assert path.exists(), "an unfinished file stays in landing"

    [outcome] = land(EHR_FILES, test_warehouse.warehouse, "rerun")

    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        total, distinct = conn.execute(
            "select count(*), count(distinct _record_position) from raw_ehr.encounters"
            " where _file_key = %s",
            (file_key,),
        ).fetchone()
        quarantined = conn.execute(
            "select count(*) from quarantine.rejected_records where file_hash = %s", (file_hash,)
        ).fetchone()[0]
    assert outcome.status == "loaded"
    assert total == distinct == outcome.rows_loaded
    assert outcome.rows_received == ROWS == total + quarantined
