"""Every DAG imports cleanly and carries an owner, tags and retries (Astronomer's integrity test)."""

from __future__ import annotations

import json
import subprocess

from ingestion import settings

DESCRIBE_DAGS = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag()
print(json.dumps({
    "errors": {path: str(error)[-2000:] for path, error in bag.import_errors.items()},
    "dags": {
        dag_id: {
            "tags": sorted(dag.tags),
            "tasks": sorted(dag.task_ids),
            "owners": sorted({task.owner for task in dag.tasks}),
            "retries": {task.task_id: task.retries for task in dag.tasks},
        }
        for dag_id, dag in bag.dags.items()
    },
}))
"""


def _describe(airflow_env: dict) -> dict:
    result = subprocess.run(
        [str(settings.VENV_BIN / "python"), "-c", DESCRIBE_DAGS],
        env=airflow_env,
        capture_output=True,
        check=False,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dags_import_without_errors_and_carry_owner_tags_and_retries(airflow_env):
    described = _describe(airflow_env)
    assert described["errors"] == {}
    assert "healthcare_pipeline" in described["dags"]
    for dag_id, dag in described["dags"].items():
        assert dag["tags"], dag_id
        assert "airflow" not in dag["owners"], f"{dag_id} keeps Airflow's default owner"
        retried = {task: n for task, n in dag["retries"].items() if task != "quality_gate"}
        assert all(n >= 1 for n in retried.values()), dag_id


def test_cosmos_renders_every_dbt_model_as_its_own_tasks(airflow_env):
    tasks = _describe(airflow_env)["dags"]["healthcare_pipeline"]["tasks"]
    for model in ("stg_ehr__encounters", "patient_crosswalk", "deid_encounters", "fct_encounters"):
        assert f"dbt.{model}.run" in tasks
        assert f"dbt.{model}.test" in tasks
    landing = {"land_ehr_files", "land_claims_files", "land_vitals_files"}
    landing |= {"land_fhir_api", "land_research_db"}
    assert landing | {"choose_build_schema", "quality_gate", "publish"} <= set(tasks)
