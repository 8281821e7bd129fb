"""A scheduled run lands only files that have settled (the landing watch's rule, settle_seconds):
a file still growing while a run starts is left where it is, and a later run lands it whole."""

from __future__ import annotations

import threading
import time

import psycopg

from orchestration import pipeline
from tests.ingestion.test_bad_inputs import HEADER, _rows

SETTLE_SECONDS = 2


def test_a_file_growing_while_a_run_starts_is_left_then_landed_whole(test_warehouse):
    folder = test_warehouse.landing_dir / "ehr"
    folder.mkdir(parents=True, exist_ok=True)
    growing = folder / "ehr_2024-08-01_001.csv"
    growing.write_text(HEADER + "\n")
    written = threading.Event()

    def write_slowly() -> None:  # a producer that writes in place, 20 rows over 3 s
        with growing.open("a") as extract:
            for row in _rows(20, first=40000):
                extract.write(row + "\n")
                extract.flush()
                time.sleep(0.15)
        written.set()

    producer = threading.Thread(target=write_slowly)
    producer.start()
    time.sleep(0.5)
    during = pipeline.land_files("ehr", "settle_during", settle_seconds=SETTLE_SECONDS)
    producer.join()
    assert during["files"] == 0  # nothing of it landed, nothing of it moved
    assert growing.exists() and written.is_set()
    # right after the last write it has not settled yet either
    assert pipeline.land_files("ehr", "settle_early", settle_seconds=SETTLE_SECONDS)["files"] == 0
    time.sleep(SETTLE_SECONDS + 0.2)
    after = pipeline.land_files("ehr", "settle_after", settle_seconds=SETTLE_SECONDS)
    assert (after["files"], after["received"], after["loaded"]) == (1, 20, 20)
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        ledger = conn.execute(
            "select run_id, rows_received from audit.file_ledger where file_name = %s",
            (growing.name,),
        ).fetchall()
    assert ledger == [("settle_after", 20)]
