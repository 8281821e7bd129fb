"""What the loaders do after the warehouse is restored to an earlier moment (hcw restore:
warehouse/point_in_time.py), so that nothing written after that moment stays lost:

- dlt's local state is deleted: each API pipeline's cursors then come from the state the restored
  warehouse holds (dlt restores a pipeline's state from its destination when it has none of its
  own), so the next pull asks the FHIR server and the research database again for everything
  changed since the moment restored to;
- every archived landing file whose content the restored ledger does not hold (landed after that
  moment) goes back into its landing folder, for the next run to land again.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass

import psycopg

from common import settings
from ingestion import ledger
from ingestion.sources import FILE_SOURCE_NAMES
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requeued:
    pipelines_reset: int
    files_requeued: int


def after_restore(warehouse: Warehouse) -> Requeued:
    return Requeued(reset_dlt_state(), requeue_unrecorded_files(warehouse))


def reset_dlt_state() -> int:
    """Delete every pipeline's local working folder (state, schemas, packages); how many."""
    pipelines = settings.DLT_DATA_DIR / "pipelines"
    folders = [path for path in pipelines.iterdir() if path.is_dir()] if pipelines.is_dir() else []
    for folder in folders:
        shutil.rmtree(folder)
    log.info(
        "deleted the local state of %d dlt pipelines: the warehouse's state stands", len(folders)
    )
    return len(folders)


def requeue_unrecorded_files(warehouse: Warehouse) -> int:
    """Move each archived file whose content is not in the ledger back to its landing folder."""
    with psycopg.connect(**warehouse.connect_kwargs("loader")) as conn:
        recorded = {row[0] for row in conn.execute("select file_hash from audit.file_ledger")}
    moved = 0
    for source in FILE_SOURCE_NAMES:
        archive = settings.ARCHIVE_DIR / source
        for path in sorted(archive.iterdir()) if archive.is_dir() else []:
            if not path.is_file() or path.is_symlink() or path.name.startswith("."):
                continue
            file_hash = ledger.content_hash(path)
            if file_hash in recorded:
                continue
            # move_aside named it after its hash when the archive held its name already
            name = path.name.removeprefix(f"{file_hash[:12]}_")
            landing = settings.LANDING_DIR / source
            landing.mkdir(parents=True, exist_ok=True)
            target = landing / name
            if target.exists():
                target = landing / path.name
            shutil.move(path, target)
            moved += 1
            log.info("%s: landed after the moment restored to: back in %s", name, landing)
    return moved
