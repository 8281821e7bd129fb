"""Run an Airflow command as the tests' Airflow processes run."""

from __future__ import annotations

import subprocess

from ingestion import settings


def run_airflow(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(settings.VENV_BIN / "airflow"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
