"""The warehouse DAG renders from a parsed dbt manifest that must match the dbt project."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from common import settings
from orchestration import dbt_manifest

PARSE_WAREHOUSE_DAG = """
import airflow, cosmos
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(__import__("sys").argv[1])
print(list(bag.import_errors.values()))
"""


def test_the_manifest_airflow_reads_matches_the_dbt_project():
    # `make test` (and make run, make up) parse the project again when it changed; run
    # `make manifest` when this fails
    assert not dbt_manifest.is_stale(), "the dbt manifest is stale: run `make manifest`"
    manifest = json.loads(dbt_manifest.MANIFEST.read_text())
    # by file: each version of a versioned model is a file of its own (deid_fhir_observations_v2)
    models = {
        Path(node["original_file_path"]).stem
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }
    on_disk = {path.stem for path in (settings.DBT_PROJECT_DIR / "models").rglob("*.sql")}
    assert models == on_disk


def test_a_changed_project_makes_the_manifest_stale_and_the_dag_refuse_it(tmp_path, airflow_env):
    manifest_dir = tmp_path / "manifest"
    shutil.copytree(dbt_manifest.MANIFEST_DIR, manifest_dir, ignore=shutil.ignore_patterns("logs"))
    assert not dbt_manifest.is_stale(manifest_dir)
    # as if a model changed after the manifest was parsed
    (manifest_dir / "fingerprint").write_text("0" * 64 + "\n")
    assert dbt_manifest.is_stale(manifest_dir)

    parsed = subprocess.run(
        [str(settings.VENV_BIN / "python"), "-c", PARSE_WAREHOUSE_DAG,
         str(settings.DAGS_DIR / "warehouse_build.py")],
        env={**airflow_env, "DBT_MANIFEST_DIR": str(manifest_dir)},
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    assert "StaleManifest" in parsed.stdout and "make manifest" in parsed.stdout

    assert dbt_manifest.ensure_manifest(manifest_dir) is True
    assert not dbt_manifest.is_stale(manifest_dir)
    assert dbt_manifest.ensure_manifest(manifest_dir) is False  # current: not parsed again
