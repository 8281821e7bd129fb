"""Which files of a landing folder are complete: those unchanged for a while (the landing
watch's rule, `settle_seconds` in airflow/orchestration.yml). A file still being written is left
where it is for a later run, which lands it whole; nothing of it is lost.

Producers should still write under another name and rename (docs/landing.md): this rule is for
those that do not.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


def settled_paths(folder: Path, pattern: str, settle_seconds: float) -> list[Path]:
    """The entries of `folder` matching `pattern` unchanged for `settle_seconds`, in name order
    (an entry's own time: a link is not followed)."""
    now = time.time_ns()
    settled = []
    for path in sorted(folder.glob(pattern)):
        try:
            changed = os.lstat(path).st_mtime_ns
        except FileNotFoundError:  # landed by another run meanwhile
            continue
        if now - changed >= settle_seconds * 1e9:
            settled.append(path)
        else:
            log.info(
                "%s: changed in the last %s s: left for a later run", path.name, settle_seconds
            )
    return settled
