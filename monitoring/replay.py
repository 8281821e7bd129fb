"""Score the landed readings of a time range again, as the processor first scored them.

    hcw replay 2024-03-15 2024-03-16   # [since, until), UTC

Every file holding a reading of the range is scored again from its landed rows (no file is landed
again), in the order the processor scored them, starting from the processor's state just before
the first of them. Each file is rescored in one transaction with its checkpoint, so a replay
stopped midway leaves every file either as it was or replayed. Alerts keep their keys, so who
acknowledged them is kept and no notification is sent twice. The processor must be stopped: a
replay holds its lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from monitoring.processor import LandedFile, Processor, load_config
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replayed:
    files: int
    readings: int


def replay(
    warehouse: Warehouse, since: datetime, until: datetime, config: dict | None = None
) -> Replayed:
    processor = Processor(warehouse, config or load_config())
    try:
        conn = processor.conn
        first, last = conn.execute(
            "select min(sequence), max(sequence) from monitoring.readings"
            " where measured_at >= %s and measured_at < %s",
            (since, until),
        ).fetchone()
        if first is None:
            log.info("no reading between %s and %s: nothing to replay", since, until)
            return Replayed(0, 0)
        files = conn.execute(
            """
            select done.sequence, done.file_hash, ledger.file_key, done.file_name, done.found_at,
                ledger.rows_loaded, done.held_back
            from monitoring.processed_files as done
            join audit.file_ledger as ledger using (file_hash)
            where done.sequence between %s and %s
            order by done.sequence
            """,
            (first, last),
        ).fetchall()
        conn.commit()
        processor.state = processor._restored(first - 1)
        readings = 0
        for sequence, file_hash, file_key, file_name, found_at, loaded, held_back in files:
            readings += processor.score_file(
                LandedFile(file_hash, file_key, file_name, found_at, loaded, held_back),
                sequence=sequence,
            )
        log.info(
            "replayed %d files (checkpoints %d-%d): %d readings", len(files), first, last, readings
        )
        return Replayed(len(files), readings)
    finally:
        processor.close()
