"""A person's command line, as a person runs it: their own role's password in an owner-only
~/.pgpass, an environment and `.env` holding no other secret (warehouse.connection.for_person)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common import settings


def person_env(tmp_path: Path, test_warehouse, role: str, password: str | None = None) -> dict:
    """A person's environment: a home with an owner-only ~/.pgpass for `role`, the warehouse's
    port, a `.env` that holds the port only, the project's folders; nothing else."""
    warehouse = test_warehouse.warehouse
    home = tmp_path / f"home_{role}"
    home.mkdir(exist_ok=True)
    pgpass = home / ".pgpass"
    secret = password or warehouse.password(role)
    pgpass.write_text(f"{warehouse.host}:{warehouse.port}:{warehouse.database}:{role}:{secret}\n")
    pgpass.chmod(0o600)
    env_file = home / "env"
    env_file.write_text(f"WAREHOUSE_PORT={warehouse.port}\n")
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "HEALTHCARE_ENV_FILE": str(env_file),
        "HEALTHCARE_VAR_DIR": str(test_warehouse.var_dir),
    }


def hcw(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
