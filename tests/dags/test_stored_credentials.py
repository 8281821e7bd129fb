"""What `make up` and `make run` store for Airflow's tasks (orchestration.stored_credentials), as
Airflow's database holds it: a connection per task role, none for the administrator or clinical
operations, and the other secrets the tasks use as variables, every value encrypted."""

from __future__ import annotations

import psycopg

from common import settings
from orchestration.stored_credentials import TASK_ROLES, prepare_airflow_database
from warehouse.connection import AIRFLOW_DATABASE


def _airflow_rows(warehouse, query: str) -> list[tuple]:
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE)
    ) as conn:
        return conn.execute(query).fetchall()


def test_each_task_role_has_one_encrypted_connection_and_the_administrator_none(
    test_warehouse, airflow_env
):
    warehouse = test_warehouse.warehouse
    rows = _airflow_rows(
        warehouse,
        "select conn_id, login, host, port, schema, is_encrypted, password from connection",
    )
    assert {row[0]: row[1] for row in rows} == {f"warehouse_{role}": role for role in TASK_ROLES}
    for conn_id, login, host, port, schema, encrypted, stored in rows:
        assert (host, port, schema) == (warehouse.host, warehouse.port, warehouse.database)
        assert encrypted and stored != warehouse.password(login), conn_id
    stored_text = " ".join(row[6] for row in rows)
    assert warehouse.admin_password not in stored_text
    assert not {"clinical_ops", warehouse.admin_user} & {row[1] for row in rows}


def test_the_other_secrets_a_task_uses_are_encrypted_variables(test_warehouse, airflow_env):
    stored = {
        key: (encrypted, value)
        for key, encrypted, value in _airflow_rows(
            test_warehouse.warehouse, "select key, is_encrypted, val from variable"
        )
    }
    # the research database's password and the configured FHIR server's client secret (the
    # SMTP password is empty here: nothing to store)
    for name in ("RESEARCH_DB_PASSWORD", "FHIR_CLIENT_SECRET"):
        encrypted, value = stored[name]
        assert encrypted and value != settings.secret(name), name
    assert "SMTP_PASSWORD" not in stored


def test_what_is_no_longer_needed_is_deleted_at_the_next_start(
    test_warehouse, airflow_env, monkeypatch
):
    warehouse = test_warehouse.warehouse
    # as an earlier version stored: a connection for a role the tasks no longer work as
    with psycopg.connect(
        **warehouse.connect_kwargs(warehouse.admin_user, AIRFLOW_DATABASE), autocommit=True
    ) as conn:
        conn.execute(
            "insert into connection (conn_id, conn_type, login, is_encrypted, is_extra_encrypted)"
            " values ('warehouse_monitor', 'postgres', 'monitor', false, false)"
        )
    monkeypatch.setenv("SMTP_PASSWORD", "smtp-password-for-now")
    prepare_airflow_database(warehouse, airflow_env)
    keys = {key for (key,) in _airflow_rows(warehouse, "select key from variable")}
    assert "SMTP_PASSWORD" in keys
    monkeypatch.delenv("SMTP_PASSWORD")
    prepare_airflow_database(warehouse, airflow_env)
    keys = {key for (key,) in _airflow_rows(warehouse, "select key from variable")}
    conn_ids = {
        conn_id for (conn_id,) in _airflow_rows(warehouse, "select conn_id from connection")
    }
    assert "SMTP_PASSWORD" not in keys and "RESEARCH_DB_PASSWORD" in keys
    assert conn_ids == {f"warehouse_{role}" for role in TASK_ROLES}
