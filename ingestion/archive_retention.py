"""Delete what is kept only for a while: landed files in the archive past their retention period
(they hold PHI) and Great Expectations' validation results as old.

Archived files carry the time they were archived (ingestion.ledger.move_aside touches them).
The quarantine folder is never cleaned here: a quarantined file waits for a steward.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from common import settings

log = logging.getLogger(__name__)


def expired_files(folder: Path, retention_days: float, now: float | None = None) -> list[Path]:
    """Files under `folder` last changed more than `retention_days` ago."""
    cutoff = (now or time.time()) - retention_days * 86400
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime < cutoff)


def apply_retention(retention_days: float, now: float | None = None) -> dict[str, int]:
    """Delete expired archived files and validation results; how many of each."""
    folders = {
        "archived_files": settings.ARCHIVE_DIR,
        "validation_results": settings.VAR_DIR / "gx" / "uncommitted" / "validations",
    }
    deleted = {}
    for what, folder in folders.items():
        expired = expired_files(folder, retention_days, now)
        for path in expired:
            path.unlink()
        deleted[what] = len(expired)
        log.info("%s: deleted %d older than %s days", what, len(expired), retention_days)
    return deleted
