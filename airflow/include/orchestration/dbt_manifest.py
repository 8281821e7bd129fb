"""The dbt manifest Airflow's warehouse DAG renders its Cosmos tasks from.

Cosmos reads this manifest (its manifest load mode), so parsing the DAG file never runs dbt. It is
made by `dbt parse` and stamped with a fingerprint of every file dbt reads: `make run`, `make test`
and `make up` call `ensure_manifest()`, which parses again only when the project changed, and the
DAG file refuses a manifest whose fingerprint no longer matches the project (`is_stale`).

hcw manifest   # parse again if the dbt project changed
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from common import settings
from common.whole_files import write_whole
from warehouse.dbt_runner import run_dbt

log = logging.getLogger(__name__)

MANIFEST_DIR = Path(
    os.environ.get("DBT_MANIFEST_DIR", settings.DBT_PROJECT_DIR / "target" / "airflow")
)
MANIFEST = MANIFEST_DIR / "manifest.json"
FINGERPRINT = MANIFEST_DIR / "fingerprint"

# What dbt writes or fetches itself: not part of the project's source
NOT_SOURCE = {"target", "logs", "dbt_packages"}

# `dbt parse` reads profiles.yml but connects to nothing: these stand in for the connection
PARSE_ONLY_PROFILE = {
    "DBT_WAREHOUSE_HOST": "127.0.0.1",
    "DBT_WAREHOUSE_PORT": "5432",
    "DBT_WAREHOUSE_DATABASE": "warehouse",
    "WAREHOUSE_TRANSFORMER_PASSWORD": "parse-only",
}


class StaleManifest(RuntimeError):
    """The dbt project changed since its manifest was parsed."""


def project_fingerprint(project_dir: Path = settings.DBT_PROJECT_DIR) -> str:
    """sha256 over the path and content of every file dbt reads (seeds through their link)."""
    digest = hashlib.sha256()
    for path in sorted(_project_files(project_dir)):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _project_files(project_dir: Path) -> list[Path]:
    files = []
    for root, folders, names in os.walk(project_dir, followlinks=True):
        if Path(root) == project_dir:
            folders[:] = [name for name in folders if name not in NOT_SOURCE]
        folders[:] = [name for name in folders if not name.startswith(".")]
        files += [Path(root) / name for name in names if not name.startswith(".")]
    return files


def is_stale(manifest_dir: Path = MANIFEST_DIR) -> bool:
    fingerprint = manifest_dir / FINGERPRINT.name
    if not (manifest_dir / MANIFEST.name).exists() or not fingerprint.exists():
        return True
    return fingerprint.read_text().strip() != project_fingerprint()


def checked_manifest(manifest_dir: Path = MANIFEST_DIR) -> Path:
    """The manifest's path, for the DAG file: a clear error when it is missing or stale."""
    if is_stale(manifest_dir):
        raise StaleManifest(
            f"{manifest_dir / MANIFEST.name} is missing or older than dbt_project/: run"
            " `make manifest` (make run, make test and make up do it too)"
        )
    return manifest_dir / MANIFEST.name


def ensure_manifest(manifest_dir: Path = MANIFEST_DIR) -> bool:
    """Parse the project into `manifest_dir` unless its manifest is current; True if it parsed."""
    if not is_stale(manifest_dir):
        return False
    fingerprint = project_fingerprint()
    env = {
        **os.environ,
        **settings.NO_TELEMETRY,
        **PARSE_ONLY_PROFILE,
        "DBT_PROFILES_DIR": str(settings.DBT_PROJECT_DIR),
        "DBT_TARGET_PATH": str(manifest_dir),
        "DBT_LOG_PATH": str(manifest_dir / "logs"),
    }
    parsed = run_dbt(["parse", "--no-partial-parse", "--quiet"], env)
    if parsed.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{parsed.stdout[-3000:]}{parsed.stderr[-3000:]}")
    # written last and whole: the DAG file takes the manifest only once this matches the project
    write_whole(manifest_dir / FINGERPRINT.name, fingerprint + "\n")
    return True
