"""PHI at rest is its owner's only: every process the product starts creates files no other user
can read (umask 077), and `var/`, where everything the product writes lives (landed, archived and
quarantined files, dlt's packages, logs, backups, the embedded database), is passable but not
listable by others (0711), with every folder in it 0700 and every file 0600
(docs/deidentification.md, "PHI at rest").
"""

from __future__ import annotations

import os
from pathlib import Path

from common import settings

OWNER_ONLY = 0o077  # the umask: no group or other bits on anything created
VAR_MODE = 0o711  # var/ itself: others may pass through, never list it


def restrict_new_files() -> None:
    """From now on this process and its children create owner-only files and folders."""
    os.umask(OWNER_ONLY)


def make_var_private(var_dir: Path | None = None) -> int:
    """Take group and other access off everything already under `var/` (written before this
    rule, or by a tool that chmods its own files), but the embedded PostgreSQL's data folder,
    whose access its server keeps as it needs it (0700). How many modes were changed."""
    var_dir = var_dir or settings.VAR_DIR
    if not var_dir.exists():
        return 0
    changed = 0
    mode = var_dir.stat().st_mode & 0o777
    if mode & ~VAR_MODE:  # wider than 0711 (a stricter one stays)
        var_dir.chmod(mode & VAR_MODE)
        changed += 1
    managed = var_dir / settings.EMBEDDED_PGDATA.name
    for folder, folders, files in os.walk(var_dir):
        here = Path(folder)
        if here == managed:
            folders.clear()
            continue
        for name in [*folders, *files]:
            path = here / name
            if path == managed or path.is_symlink():
                continue
            try:
                mode = path.stat().st_mode & 0o777
                if mode & OWNER_ONLY:
                    path.chmod(mode & ~OWNER_ONLY)
                    changed += 1
            except FileNotFoundError:  # deleted meanwhile by its writer (dlt, dbt)
                continue
    return changed
