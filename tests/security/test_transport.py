"""A warehouse on another machine is reached only over TLS with its certificate checked
(warehouse/transport.py), against a real TLS server: Debian's PostgreSQL (the embedded one has no
TLS), started on this machine's own network address with a certificate for it, taking TLS
connections only."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psutil
import psycopg
import pytest
import sqlalchemy

from common import settings
from ingestion.sources.research_db import research_database
from warehouse.connection import for_service, from_environment
from warehouse.tls_certificates import CA, CERTIFICATE, KEY, write_server_certificates
from warehouse.transport import InsecureTransport, is_local

SERVER_USER = "postgres"  # Debian's package's: PostgreSQL refuses to run as root
PASSWORD = "tls-test-password"


def _binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    assert found, "Debian's postgresql is missing: make setup installs it"
    return found[-1].parent


def _network_address() -> str:
    """This machine's own address on a network: not loopback, so the product must use TLS."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not is_local(address.address):
                return address.address
    pytest.fail("no network address but loopback on this machine")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(folder: Path, *command: str) -> None:
    done = subprocess.run(
        ["runuser", "-u", SERVER_USER, "--", *command],
        capture_output=True, text=True, cwd=folder, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def tls_server():
    """(address, port, the right authority's certificate, another authority's)."""
    # outside pytest's own folders, which the server's user may not enter
    folder = Path(tempfile.mkdtemp(prefix="warehouse-tls-test-"))
    address, port, binaries = _network_address(), _free_port(), _binaries()
    certificates = write_server_certificates(folder / "tls", [address], "warehouse test CA")
    other = write_server_certificates(folder / "other", [address], "another CA")
    data = folder / "data"
    (folder / "password").write_text(PASSWORD + "\n")
    shutil.chown(folder, SERVER_USER)
    for path in [folder / "password", certificates, *certificates.iterdir()]:
        shutil.chown(path, SERVER_USER)
    _as_server_user(
        folder, str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
        "--auth=scram-sha-256", f"--pwfile={folder / 'password'}",
    )  # fmt: skip
    # docker-compose.yml's PostgreSQL's own rules: TLS only
    shutil.copy(settings.PROJECT_ROOT / "warehouse" / "pg_hba.compose.conf", data / "pg_hba.conf")
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = '{address}'\nport = {port}\nunix_socket_directories = '{folder}'\n"
            f"ssl = on\nssl_cert_file = '{certificates / CERTIFICATE}'\n"
            f"ssl_key_file = '{certificates / KEY}'\n"
        )
    _as_server_user(
        folder, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "start"
    )
    try:
        yield address, port, certificates / CA, other / CA
    finally:
        _as_server_user(folder, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(folder)


def _url(address: str, port: int, query: str = "") -> str:
    return f"postgresql://postgres:{PASSWORD}@{address}:{port}/postgres{query}"


def test_the_product_reaches_it_with_verify_full_and_the_right_authority(tls_server, monkeypatch):
    address, port, authority, _ = tls_server
    monkeypatch.setenv("WAREHOUSE_URL", _url(address, port, f"?sslrootcert={authority}"))
    warehouse = from_environment()
    assert warehouse.transport.sslmode == "verify-full"
    with psycopg.connect(**warehouse.connect_kwargs("postgres")) as conn:
        encrypted = conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        assert encrypted.fetchone() == (True,)
        assert (
            "sslmode=verify-full" in conn.info.dsn and f"sslrootcert={authority}" in conn.info.dsn
        )
    # the URL dlt, Great Expectations and Airflow connect with carries the same
    engine = sqlalchemy.create_engine(warehouse.url("postgres", driver="postgresql+psycopg2"))
    assert engine.url.query == {"sslmode": "verify-full", "sslrootcert": str(authority)}
    with engine.connect() as conn:
        query = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
        assert conn.execute(sqlalchemy.text(query)).scalar() is True
    engine.dispose()


def test_a_certificate_from_another_authority_is_refused(tls_server, monkeypatch):
    address, port, _, other_authority = tls_server
    monkeypatch.setenv("WAREHOUSE_URL", _url(address, port, f"?sslrootcert={other_authority}"))
    warehouse = from_environment()
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(**warehouse.connect_kwargs("postgres"))


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        ("?sslmode=require&sslrootcert={authority}", "not sslmode=require"),
        ("?sslmode=disable", "not sslmode=disable"),
        ("", "give the authority that signed its certificate"),
        ("?sslrootcert=/nowhere/ca.crt", "sslrootcert /nowhere/ca.crt is not a file"),
    ],
)
def test_the_product_refuses_another_machine_without_verify_full(
    tls_server, monkeypatch, query, refusal
):
    address, port, authority, _ = tls_server
    monkeypatch.setenv("WAREHOUSE_URL", _url(address, port, query.format(authority=authority)))
    with pytest.raises(InsecureTransport, match=refusal) as refused:
        from_environment()
    assert str(refused.value).startswith(f"WAREHOUSE_URL names {address}") or "not a file" in str(
        refused.value
    )
    assert PASSWORD not in str(refused.value)


def test_the_server_refuses_a_connection_without_tls(tls_server):
    address, port, _, _ = tls_server
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(
            host=address, port=port, user="postgres", password=PASSWORD, dbname="postgres",
            sslmode="disable",
        )  # fmt: skip


def test_the_embedded_server_on_loopback_is_reached_as_it_is(test_warehouse):
    """The embedded server (no TLS, 127.0.0.1 only) needs no TLS settings."""
    assert test_warehouse.warehouse.transport.sslmode == ""
    with psycopg.connect(**test_warehouse.warehouse.connect_kwargs("steward")) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_the_research_database_on_another_machine_is_held_to_the_same_rule(
    tls_server, test_warehouse, monkeypatch
):
    address, port, authority, _ = tls_server
    for name, value in {
        "RESEARCH_DB_HOST": address, "RESEARCH_DB_PORT": str(port), "RESEARCH_DB_NAME": "postgres",
        "RESEARCH_DB_USER": "postgres", "RESEARCH_DB_PASSWORD": PASSWORD,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with pytest.raises(InsecureTransport, match=f"RESEARCH_DB_HOST names {address}"):
        research_database(test_warehouse.warehouse)
    monkeypatch.setenv("RESEARCH_DB_SSLROOTCERT", str(authority))
    source = research_database(test_warehouse.warehouse)
    with psycopg.connect(
        host=source.host, port=source.port, dbname=source.database, user=source.user,
        password=source.password, **source.transport.connect_kwargs(),
    ) as conn:  # fmt: skip
        assert "sslmode=verify-full" in conn.info.dsn
        assert conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()[
            0
        ]


def test_a_list_of_hosts_is_refused_whatever_its_first(monkeypatch):
    """libpq tries each host of a list: a local first one would hand over to the next unchecked."""
    monkeypatch.setenv("WAREHOUSE_HOST", "127.0.0.1,db.example.org")
    monkeypatch.setenv("WAREHOUSE_PORT", "5432")
    with pytest.raises(InsecureTransport, match="one host, not a list"):
        for_service()
