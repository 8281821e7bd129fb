"""What Airflow's processes and tasks start with holds no secret (orchestration.airflow_env):
none by name, none by value under another name; Airflow's own secrets are in its owner-only
configuration file. A task's warehouse and a service's have no administrator. (The environments
of the running services and of a task of every DAG: tests/dags/test_airflow_services.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from common import settings
from orchestration.airflow_env import AIRFLOW_SECRETS, airflow_environment, config_file
from orchestration.task_warehouse import task_warehouse
from warehouse.connection import ROLE_PASSWORD_VARIABLES, NotTheirRole


def test_airflow_environment_holds_no_secret_by_name_nor_by_value(
    test_warehouse, monkeypatch, tmp_path
):
    warehouse = test_warehouse.warehouse
    monkeypatch.setenv("PGPASSWORD", warehouse.admin_password)
    monkeypatch.setenv("BUILD_NOTE", warehouse.password("backup"))  # a secret under any name
    monkeypatch.setenv("BUILD_ARGS", f"--token={warehouse.password('loader')} -v")  # inside one
    monkeypatch.setenv("DATABASE_LINK", "postgresql://someone:s3cret-pass@db.example.org/x")
    # a FHIR server's client secret under a name the configuration chose
    servers = tmp_path / "fhir_servers.yml"
    servers.write_text(
        "servers:\n  - {base_url: 'https://epic.example.org/r4', client_id: w,"
        " client_secret: EPIC_CLIENT}\n"
    )
    monkeypatch.setenv("FHIR_SERVERS_FILE", str(servers))
    monkeypatch.setenv("EPIC_CLIENT", "epic-client-secret")
    monkeypatch.setenv("FHIR_BASE_URL", "https://fhir.example.org/r4")
    assert os.environ["WAREHOUSE_URL"]  # the throwaway's superuser URL, as an operator's
    env = airflow_environment(warehouse)
    text = "\0".join(f"{name}={value}" for name, value in env.items())
    airflow_secrets = [settings.require(variable) for variable in AIRFLOW_SECRETS.values()]
    secrets = [
        warehouse.admin_password,
        *(warehouse.password(role) for role in ROLE_PASSWORD_VARIABLES),
        *airflow_secrets,
        "epic-client-secret",
        "s3cret-pass",
    ]
    assert [secret for secret in secrets if secret in text] == []
    assert not {"WAREHOUSE_URL", "BUILD_NOTE", "BUILD_ARGS", "EPIC_CLIENT"} & set(env)
    # what the tasks need to find things, which is no secret, is there
    assert env["FHIR_BASE_URL"] == "https://fhir.example.org/r4"
    assert env["WAREHOUSE_PORT"] == str(warehouse.port)
    assert env["HEALTHCARE_ENV_FILE"] == os.devnull  # no `.env` for them
    assert env[settings.SECRETS_FROM_AIRFLOW] == "1"
    # Airflow's own secrets are in its configuration file, owner-only
    config = config_file()
    assert config.stat().st_mode & 0o777 == 0o600
    assert all(secret in config.read_text() for secret in airflow_secrets)
    assert f"airflow:{warehouse.password('airflow')}@" in config.read_text()


def test_a_task_has_no_administrator(test_warehouse, monkeypatch):
    monkeypatch.setenv(settings.SECRETS_FROM_AIRFLOW, "1")
    with pytest.raises(NotTheirRole, match="an Airflow task has no credentials for"):
        task_warehouse().connect_kwargs(test_warehouse.warehouse.admin_user)


SERVICE_PROBE = """
import sys
import psycopg
from warehouse.connection import NotTheirRole, for_service
warehouse = for_service()
with psycopg.connect(**warehouse.connect_kwargs("monitor")) as conn:
    print("monitor:", conn.execute("select current_user").fetchone()[0])
for role in (sys.argv[1], "transformer"):
    try:
        warehouse.connect_kwargs(role)
        print(role, "given")
    except (NotTheirRole, RuntimeError) as refused:
        print(role, "refused:", refused)
"""


def test_a_service_connects_with_its_own_roles_only(test_warehouse, tmp_path):
    warehouse = test_warehouse.warehouse
    own = tmp_path / "service.env"
    own.write_text(f"WAREHOUSE_MONITOR_PASSWORD={warehouse.password('monitor')}\n")
    own.chmod(0o600)
    env = {
        "PATH": os.environ["PATH"],
        "HEALTHCARE_ENV_FILE": str(own),
        "WAREHOUSE_PORT": str(warehouse.port),
        "HEALTHCARE_VAR_DIR": str(test_warehouse.var_dir),
    }
    probe = subprocess.run(
        [sys.executable, "-c", SERVICE_PROBE, warehouse.admin_user],
        cwd=settings.PROJECT_ROOT, env=env, capture_output=True, text=True, check=False,
        timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert "monitor: monitor" in probe.stdout
    assert f"{warehouse.admin_user} refused: no credentials for" in probe.stdout
    assert "transformer refused: WAREHOUSE_TRANSFORMER_PASSWORD is not set" in probe.stdout
