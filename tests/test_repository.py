"""What the repository promises a newcomer: compose matches `.env` and the lock, secrets stay out."""

from __future__ import annotations

import re
import subprocess
import tomllib

import yaml

from common import settings
from common.env_file import DERIVED, EDITABLE, GENERATED, is_secret, read_env_file

ROOT = settings.PROJECT_ROOT
COMPOSE = (ROOT / "docker-compose.yml").read_text()
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())


def _locked_version(package: str) -> str:
    return next(p["version"] for p in LOCK["package"] if p["name"] == package)


def test_compose_uses_exactly_the_variables_make_setup_writes():
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)[^}]*\}", COMPOSE))
    # and the containers' user, Airflow's own by default; the key that reads backups is in none
    # (docs/runbook.md, "Backups and restore"), the one that encrypts them in each
    assert interpolated == (set(GENERATED) - {"BACKUP_IDENTITY"}) | set(EDITABLE) | set(DERIVED) | {
        "AIRFLOW_UID"
    }


# the secrets each container holds in its environment: the one-off administrator's step all of
# them, the others none (docker-compose.yml)
CONTAINER_SECRETS = {
    "postgres": {"WAREHOUSE_ADMIN_PASSWORD"},
    "airflow-permissions": set(),
    "airflow-init": {name for name in GENERATED if is_secret(name)} - {"BACKUP_IDENTITY"}
    | {"SMTP_PASSWORD", "CLINICAL_ALERT_WEBHOOK_URL"},
    "airflow-apiserver": set(),
    "airflow-scheduler": set(),
    "airflow-dag-processor": set(),
    "airflow-triggerer": set(),
    "vitals-processor": set(),  # its own file (orchestration/service_secrets.py)
    "wal-archiver": set(),  # it encrypts to the backup key's public half
}
# PostgreSQL's own user (999 in its image), which writes the WAL spool the archiver empties
ARCHIVER_USER = "999:0"


def test_each_container_holds_only_the_secrets_its_services_use_and_none_runs_as_root():
    services = yaml.safe_load(COMPOSE)["services"]
    assert set(services) == set(CONTAINER_SECRETS)
    for name, service in services.items():
        environment = service.get("environment", {})
        # the secrets of .env it is given, under whatever name (WAREHOUSE_URL holds the admin's)
        held = {
            variable
            for value in environment.values()
            for variable in re.findall(r"\$\{([A-Z0-9_]+)[^}]*\}", str(value))
            if is_secret(variable)
        }
        assert held == CONTAINER_SECRETS[name], name
        if name == "postgres":  # its image drops root itself
            continue
        # none runs as root but the step that hands out folders, which holds no secret
        if name == "wal-archiver":
            assert service["user"] == ARCHIVER_USER
        elif name != "airflow-permissions":
            assert service["user"] == "${AIRFLOW_UID:-50000}:0", name
        # nor may one read .env in the project it mounts
        assert "/dev/null:/opt/project/.env:ro" in service["volumes"], name


def test_compose_names_the_locked_airflow_and_python():
    services = yaml.safe_load(COMPOSE)["services"]
    images = {service.get("image", "") for service in services.values()}
    airflow_images = [image for image in images if image.startswith("apache/airflow:")]
    assert airflow_images, "no Airflow image in docker-compose.yml"
    for image in airflow_images:
        airflow_version, python_version = re.fullmatch(
            r"apache/airflow:([\d.]+)-python([\d.]+)", image
        ).groups()
        assert airflow_version == _locked_version("apache-airflow")
        assert LOCK["requires-python"] == f"=={python_version}.*"


def test_every_airflow_service_runs_the_four_airflow_3_components():
    services = yaml.safe_load(COMPOSE)["services"]
    commands = {str(service.get("command")) for service in services.values()}
    assert {"api-server", "scheduler", "dag-processor", "triggerer"} <= commands


def test_generated_files_are_ignored_by_git():
    generated = [".env", ".venv/bin/python", "var/pgdata/PG_VERSION", "dbt_project/target/x.json"]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *generated],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == generated


def test_no_secret_from_env_appears_in_a_tracked_file():
    env = read_env_file(settings.ENV_FILE)
    secrets = [
        value
        for name, value in env.items()
        if (name in GENERATED or name == "SMTP_PASSWORD")
        and name != "WAREHOUSE_PORT"
        and len(value) >= 12
    ]
    assert secrets, "no .env here: run `make setup` first"
    for value in secrets:
        found = subprocess.run(
            ["git", "grep", "-lF", "--", value], cwd=ROOT, capture_output=True, check=False
        )
        assert found.returncode == 1, "a value from .env is in a tracked file"


def test_compose_postgresql_takes_tls_only_and_its_clients_check_its_certificate():
    """The rules and settings docker-compose.yml gives its PostgreSQL, which
    tests/security/test_transport.py puts to a real TLS server."""
    compose = yaml.safe_load(COMPOSE)
    postgres = compose["services"]["postgres"]
    command = " ".join(postgres["command"])
    assert "ssl=on" in command and "hba_file=/etc/postgresql/pg_hba.conf" in command
    assert "./warehouse/pg_hba.compose.conf:/etc/postgresql/pg_hba.conf:ro" in postgres["volumes"]
    assert "./var/secrets/postgres-tls:/tls:ro" in postgres["volumes"]
    rules = [
        line.split()
        for line in (settings.PROJECT_ROOT / "warehouse" / "pg_hba.compose.conf").read_text()
        .splitlines()
        if line.strip() and not line.startswith("#")
    ]  # fmt: skip
    assert {rule[0] for rule in rules} == {"local", "hostssl", "hostnossl"}
    assert all(rule[-1] == "reject" for rule in rules if rule[0] == "hostnossl")
    ca = "/opt/project/var/secrets/postgres-tls/ca.crt"
    assert compose["x-settings"]["WAREHOUSE_SSLROOTCERT"] == ca
    init_url = compose["services"]["airflow-init"]["environment"]["WAREHOUSE_URL"]
    assert init_url.endswith(f"?sslrootcert={ca}")
