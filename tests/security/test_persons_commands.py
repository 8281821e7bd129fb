"""A person's commands connect with their own role only (warehouse.connection.for_person): the
steward's `hcw quarantine show` and `hcw resubmit`, clinical operations' `hcw alerts open` and
`hcw alerts acknowledge`, run as the person would run them: a process whose environment and
`.env` hold no administrator password and no other role's, its password in an owner-only
~/.pgpass. Such a command never starts the server."""

from __future__ import annotations

import json
import socket
import struct
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.persons import hcw, person_env
from warehouse.connection import ROLE_PASSWORD_VARIABLES, for_person


def _secrets(test_warehouse) -> list[str]:
    warehouse = test_warehouse.warehouse
    return [warehouse.admin_password, *(warehouse.password(r) for r in ROLE_PASSWORD_VARIABLES)]


@pytest.fixture(scope="module")
def quarantined(test_warehouse) -> int:
    """One EHR record quarantined at landing, as the loader writes it."""
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("loader")) as conn:
        return conn.execute(
            "insert into quarantine.rejected_records (source, file_name, file_hash,"
            " record_position, rule, reason, record) values ('ehr', 'ehr_persons.csv', 'h', 3,"
            " 'not_null', 'not_null: patient_id is empty', %s) returning record_id",
            (json.dumps({"patient_id": "", "visit_date": "2024-05-01"}),),
        ).fetchone()[0]


@pytest.fixture(scope="module")
def open_alert(test_warehouse) -> str:
    """One open critical alert, as the vitals processor (monitor) raises it."""
    key = str(uuid.uuid4())
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("monitor")) as conn:
        conn.execute(
            "insert into monitoring.alerts (alert_key, patient_key, ward, room, condition,"
            " raised_at, raised_sequence, raised_reading_key, news2_score, news2_parts)"
            " values (%s, %s, 'ward 4', '207', 'critical', now(), 1, %s, 7, '{}')",
            (key, str(uuid.uuid4()), str(uuid.uuid4())),
        )
    return key


def test_the_stewards_commands_work_with_the_stewards_own_password(
    test_warehouse, quarantined, tmp_path
):
    env = person_env(tmp_path, test_warehouse, "steward")
    held = json.dumps(env) + Path(env["HEALTHCARE_ENV_FILE"]).read_text()
    assert not [secret for secret in _secrets(test_warehouse) if secret in held]
    shown = hcw(env, "quarantine", "show", str(quarantined))
    assert shown.returncode == 0, shown.stderr
    corrected = json.loads(shown.stdout) | {"patient_id": "P-CORRECTED"}
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(corrected))
    resubmitted = hcw(env, "resubmit", str(quarantined), str(fixed))
    assert resubmitted.returncode == 0, resubmitted.stderr
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        assert conn.execute(
            "select count(*) from quarantine.resubmissions where record_id = %s", (quarantined,)
        ).fetchone() == (1,)


def test_clinical_operations_acknowledge_with_their_own_password(
    test_warehouse, open_alert, tmp_path
):
    env = person_env(tmp_path, test_warehouse, "clinical_ops")
    listed = hcw(env, "alerts", "open")
    assert listed.returncode == 0, listed.stderr
    assert open_alert in listed.stdout
    acknowledged = hcw(env, "alerts", "acknowledge", open_alert, "--by", "charge nurse")
    assert acknowledged.returncode == 0, acknowledged.stderr
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("clinical_ops")) as conn:
        assert conn.execute(
            "select acknowledged_by from monitoring.alerts where alert_key = %s", (open_alert,)
        ).fetchone() == ("charge nurse",)


def test_the_credentials_are_the_persons_own(test_warehouse, open_alert, tmp_path):
    """A wrong password in their ~/.pgpass is refused: nothing else supplied one."""
    env = person_env(tmp_path, test_warehouse, "clinical_ops", password="not-the-password")
    refused = hcw(env, "alerts", "open")
    assert refused.returncode == 1
    assert "password authentication failed for user" in refused.stderr
    assert "clinical_ops" in refused.stderr and "~/.pgpass" in refused.stderr


def test_a_person_connects_as_no_other_role(test_warehouse):
    warehouse = for_person("steward")
    with pytest.raises(PermissionError, match="connects as steward only, not as loader"):
        warehouse.connect_kwargs("loader")
    assert warehouse.admin_user == warehouse.admin_password == ""


def test_a_persons_command_never_starts_the_server(test_warehouse, tmp_path):
    env = person_env(tmp_path, test_warehouse, "steward")
    Path(env["HEALTHCARE_ENV_FILE"]).write_text("WAREHOUSE_PORT=9\n")  # nothing listens there
    env["HEALTHCARE_VAR_DIR"] = str(tmp_path / "var")
    refused = hcw(env, "quarantine", "show", "1")
    assert refused.returncode == 1
    assert "this command never starts it" in refused.stderr
    assert not (tmp_path / "var" / "pgdata").exists()


def test_a_persons_password_never_goes_to_a_server_asking_for_it_in_clear(test_warehouse, tmp_path):
    """Anything listening on the port while the warehouse is down, asking for the password in
    clear, gets none: SCRAM only (found by a hostile review)."""
    received: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def impostor() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                received.append(conn.recv(65536))  # the startup message
                conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
                try:
                    while chunk := conn.recv(65536):
                        received.append(chunk)
                except OSError:
                    pass

        thread = threading.Thread(target=impostor, daemon=True)
        thread.start()
        env = person_env(tmp_path, test_warehouse, "clinical_ops")
        Path(env["HEALTHCARE_ENV_FILE"]).write_text(f"WAREHOUSE_PORT={port}\n")
        refused = hcw(env, "alerts", "open")
        thread.join(timeout=30)
    assert refused.returncode == 1
    password = test_warehouse.warehouse.password("clinical_ops").encode()
    assert received and not any(password in chunk for chunk in received)
    assert not any(chunk.startswith(b"p") for chunk in received[1:])  # no PasswordMessage
