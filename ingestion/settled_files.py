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
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def settled_entries(
    folder: Path, pattern: str, settle_seconds: float
) -> Iterator[tuple[Path, os.stat_result]]:
    """The entries of `folder` matching `pattern` unchanged for `settle_seconds`, in name order,
    with their status (an entry's own: a link is not followed); those still changing are left."""
    now = time.time_ns()
    for path in sorted(folder.glob(pattern)):
        try:
            status = os.lstat(path)
        except FileNotFoundError:  # landed by another run meanwhile
            continue
        if now - status.st_mtime_ns >= settle_seconds * 1e9:
            yield path, status


def settled_paths(folder: Path, pattern: str, settle_seconds: float) -> list[Path]:
    """The paths of `settled_entries`; the files left for a later run are logged."""
    settled = [path for path, _ in settled_entries(folder, pattern, settle_seconds)]
    for path in sorted(set(folder.glob(pattern)) - set(settled)):
        log.info("%s: changed in the last %s s: left for a later run", path.name, settle_seconds)
    return settled
