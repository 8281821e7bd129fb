"""Generate `.env` with fresh random secrets; running it again keeps the ones it made before.

hcw setup-env
"""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def _password() -> str:
    return secrets.token_urlsafe(24)


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _backup_identity() -> str:
    """An age X25519 identity: backups are encrypted to its public half
    (warehouse/backup_crypto.py)."""
    from pyrage import x25519

    return str(x25519.Identity.generate())


def _default_port() -> str:
    """54329 for the embedded PostgreSQL, unless something on this machine already listens there."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 54329)) != 0:
            return "54329"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


# Every variable `make setup` writes, in the order it writes them. docker-compose.yml reads the same.
GENERATED: dict[str, Callable[[], str]] = {
    "WAREHOUSE_PORT": _default_port,
    "WAREHOUSE_ADMIN_PASSWORD": _password,
    "WAREHOUSE_LOADER_PASSWORD": _password,
    "WAREHOUSE_TRANSFORMER_PASSWORD": _password,
    "WAREHOUSE_PUBLISHER_PASSWORD": _password,
    "WAREHOUSE_STEWARD_PASSWORD": _password,
    "WAREHOUSE_ANALYST_PASSWORD": _password,
    "WAREHOUSE_MONITOR_PASSWORD": _password,
    "WAREHOUSE_CLINICAL_OPS_PASSWORD": _password,
    "WAREHOUSE_BACKUP_PASSWORD": _password,
    "AIRFLOW_DB_PASSWORD": _password,
    "AIRFLOW_FERNET_KEY": _fernet_key,
    "AIRFLOW_API_SECRET_KEY": _password,
    "AIRFLOW_JWT_SECRET": _password,
    "FHIR_CLIENT_SECRET": _password,
    "RESEARCH_DB_PASSWORD": _password,
    "BACKUP_IDENTITY": _backup_identity,
}


def _backup_recipient(values: dict[str, str]) -> str:
    """The public half of BACKUP_IDENTITY: what encrypts a backup, which cannot read one."""
    from pyrage import x25519

    return str(x25519.Identity.from_str(values["BACKUP_IDENTITY"]).to_public())


# Settings derived from the generated ones, written again at every `make setup`: not secrets
DERIVED: dict[str, Callable[[dict[str, str]], str]] = {"BACKUP_RECIPIENT": _backup_recipient}


def with_derived(values: dict[str, str]) -> dict[str, str]:
    """`values` (every generated one among them) and the settings derived from them."""
    return {**values, **{name: derive(values) for name, derive in DERIVED.items()}}


# Settings `make setup` writes once with these defaults, for the user to edit: where alerts go.
EDITABLE: dict[str, str] = {
    "SMTP_HOST": "localhost",
    "SMTP_PORT": "25",
    "SMTP_STARTTLS": "true",  # the server's certificate checked; false only for a relay on this host
    "SMTP_USER": "",
    "SMTP_PASSWORD": "",
    "ALERT_EMAIL_FROM": "healthcare-warehouse@localhost",
    "ALERT_EMAIL_TO": "data-engineering@localhost",
    # clinical alerts from the vitals processor: a webhook if set, else email to this address
    "CLINICAL_ALERT_WEBHOOK_URL": "",
    "CLINICAL_ALERT_EMAIL_TO": "clinical-operations@localhost",
}


# Settings that hold a secret beyond those generated above, by their name: a password, a client
# secret, a key, a token, a URL or DSN that carries credentials, an agent's socket, Airflow's own.
# WAREHOUSE_PORT, FHIR_SERVER_KEY (a server's name), the shell's PWD and the URLs of token
# endpoints are not.
_SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PWD$|_PASS$|SECRET|TOKEN(?!_URL$)|CREDENTIAL|PRIVATE|API_?KEY|_KEY$"
    r"|WEBHOOK|FERNET|_DSN$|DATABASE_URL|AUTH_SOCK|SQL_ALCHEMY_CONN"
    r"|^WAREHOUSE_URL$|^AIRFLOW_CONN_|^AIRFLOW_VAR_"
)
NOT_SECRET = {"WAREHOUSE_PORT", "FHIR_SERVER_KEY", "PWD", "OLDPWD"}
# a URL with a user and a password in it, under whatever name
_CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


def is_secret(name: str) -> bool:
    """Whether the setting `name` holds a secret: a process is given it only when it uses it."""
    name = name.upper()
    return name not in NOT_SECRET and (name in GENERATED or bool(_SECRET_NAME.search(name)))


def holds_credentials(value: str) -> bool:
    """Whether `value` is a URL with a password in it (postgresql://user:password@host/...)."""
    return bool(_CREDENTIALS_IN_URL.search(value))


def shareable(environ: dict[str, str]) -> dict[str, str]:
    """`environ` without a secret by its name and without a URL's credentials: for a child
    process, which is then given the one credential it runs with (dbt, pg_dump)."""
    return {
        name: value
        for name, value in environ.items()
        if not is_secret(name) and not holds_credentials(value) and not name.startswith("PG")
    }


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip('"')
    return values


def write_env_file(path: Path) -> list[str]:
    """Fill in whatever `path` lacks; return the names of the variables newly generated."""
    existing = read_env_file(path)
    created = [name for name in GENERATED if name not in existing]
    values = with_derived({**{name: GENERATED[name]() for name in created}, **existing})
    lines = ["# Generated by `make setup`. Secrets: never commit this file."]
    lines += [f"{name}={values[name]}" for name in [*GENERATED, *DERIVED]]
    lines += ["", "# Alert email (failures, recoveries, deadlines, the weekly report): edit these"]
    lines += [f"{name}={existing.get(name, default)}" for name, default in EDITABLE.items()]
    lines += [
        f"{name}={value}"
        for name, value in existing.items()
        if name not in GENERATED and name not in DERIVED and name not in EDITABLE
    ]
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return created
