"""Delete what is kept on disk only for a while (it holds PHI, or results about it), each kind for
its own number of days, all configured in one place: airflow/orchestration.yml's
`maintenance.retention_days` (docs/deidentification.md, "PHI at rest").

  archive             landed files, counted from their archiving (ingestion.ledger.move_aside)
  quarantine          files held whole for a steward, who must act within this many days
  dlt_packages        dlt load packages kept among the loaded ones past their load (a completed
                      one is deleted as soon as its load is reconciled:
                      ingestion.dlt_pipeline.forget_loaded_packages); a package goes whole. A
                      package still pending is never touched here: dlt's state moved its
                      cursors when it was extracted, and only dlt's abort rolls them back (each
                      loader aborts a pending package at its next run, which completes it into
                      the loaded ones)
  logs                Airflow's and the services' logs
  access_log          the embedded server's log: who connected, what analysts asked
                      (warehouse/access_log.py), a file a day
  validation_results  Great Expectations' validation results
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from common import settings

log = logging.getLogger(__name__)

# dlt's completed packages under each pipeline's working folder (dlt.common.storages.LoadStorage)
DLT_PACKAGE_FOLDERS = ("load/loaded",)


def kept_folders() -> dict[str, list[Path]]:
    """Each kind of what is kept for a while: the folders that hold it."""
    pipelines = settings.DLT_DATA_DIR / "pipelines"
    return {
        "archive": [settings.ARCHIVE_DIR],
        "quarantine": [settings.QUARANTINE_DIR],
        "dlt_packages": [
            pipeline / packages
            for pipeline in (sorted(pipelines.iterdir()) if pipelines.exists() else [])
            for packages in DLT_PACKAGE_FOLDERS
        ],
        "logs": [
            settings.VAR_DIR / "logs",
            settings.AIRFLOW_HOME / "logs",
        ],
        "validation_results": [settings.VAR_DIR / "gx" / "uncommitted" / "validations"],
        "access_log": [settings.EMBEDDED_PGDATA / settings.SERVER_LOG_FOLDER],
    }


def _last_changed(path: Path) -> float:
    """When `path` last changed: a folder, when its newest file did."""
    if path.is_file():
        return path.stat().st_mtime
    times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
    return max(times, default=path.stat().st_mtime)


def _expired(kind: str, folder: Path, cutoff: float) -> Iterator[Path]:
    if not folder.exists():
        return
    if kind == "dlt_packages":  # whole packages
        yield from (p for p in sorted(folder.iterdir()) if _last_changed(p) < cutoff)
    else:
        yield from (
            p for p in sorted(folder.rglob("*")) if p.is_file() and _last_changed(p) < cutoff
        )


def apply_retention(retention_days: dict[str, float], now: float | None = None) -> dict[str, int]:
    """Delete, of each kind, what is older than its retention; how many of each. A kind without a
    retention is refused: nothing holding PHI may be kept for ever by omission."""
    folders = kept_folders()
    missing = sorted(set(folders) - set(retention_days))
    if missing:
        raise ValueError(f"no retention configured for: {', '.join(missing)}")
    deleted = {}
    for kind, kind_folders in folders.items():
        cutoff = (now or time.time()) - retention_days[kind] * 86400
        expired = [path for folder in kind_folders for path in _expired(kind, folder, cutoff)]
        for path in expired:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        deleted[kind] = len(expired)
        log.info("%s: deleted %d older than %s days", kind, len(expired), retention_days[kind])
    return deleted
