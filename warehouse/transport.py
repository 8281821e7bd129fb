"""How the product reaches its warehouse: on this machine as it is (the embedded server has no
TLS and listens on 127.0.0.1 only), on any other only over TLS with the server's certificate
checked against a CA and its name (libpq's `sslmode=verify-full`; PostgreSQL's docs, "SSL
Support"), or not at all: a connection that could be read or redirected on the way carries
passwords and PHI.

WAREHOUSE_URL=postgresql://postgres:...@db.example.org:5432/warehouse?sslrootcert=/etc/ca.crt
WAREHOUSE_SSLROOTCERT=/etc/ca.crt    # the same, for commands and services given WAREHOUSE_HOST

`sslmode` may be left out (verify-full is used) or given as verify-full; any other is refused,
as is a remote server with no `sslrootcert` (a file, or `system` for the system's authorities).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

VERIFY_FULL = "verify-full"
# the variables a service or command is told the transport by, beside WAREHOUSE_HOST
SSLMODE_VARIABLE = "WAREHOUSE_SSLMODE"
SSLROOTCERT_VARIABLE = "WAREHOUSE_SSLROOTCERT"


class InsecureTransport(ValueError):
    """A warehouse on another machine asked for without verify-full TLS."""


def is_local(host: str) -> bool:
    """Whether `host` is this machine: a Unix socket's folder, localhost, a loopback address."""
    if host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Transport:
    sslmode: str = ""
    sslrootcert: str = ""

    def connect_kwargs(self) -> dict[str, str]:
        """For psycopg.connect (libpq's names)."""
        return {
            name: value
            for name, value in (("sslmode", self.sslmode), ("sslrootcert", self.sslrootcert))
            if value
        }

    def url_query(self) -> str:
        """For a connection URL (SQLAlchemy, dlt): `?sslmode=...` or nothing."""
        query = urlencode(self.connect_kwargs())
        return f"?{query}" if query else ""

    def libpq_environment(self) -> dict[str, str]:
        """For a PostgreSQL client program (pg_basebackup)."""
        return {f"PG{name.upper()}": value for name, value in self.connect_kwargs().items()}

    def environment(self) -> dict[str, str]:
        """For a service or task told where the warehouse is (beside WAREHOUSE_HOST)."""
        return {
            name: value
            for name, value in (
                (SSLMODE_VARIABLE, self.sslmode),
                (SSLROOTCERT_VARIABLE, self.sslrootcert),
            )
            if value
        }


def transport_for(
    host: str, sslmode: str = "", sslrootcert: str = "", where: str = ""
) -> Transport:
    """The transport to `host`, asked for as `sslmode` and `sslrootcert` in `where` (named in
    the refusal); refused (InsecureTransport) for another machine without verify-full TLS."""
    told = where or "the warehouse's settings"
    if "," in host:  # libpq would try each: one judged local could hand over to the next
        raise InsecureTransport(f"{told}: one host, not a list ({host})")
    if is_local(host):
        return Transport(sslmode, sslrootcert)
    if sslmode and sslmode != VERIFY_FULL:
        raise InsecureTransport(
            f"{told} names {host}, which is not this machine: the warehouse is reached there only"
            f" over TLS with its certificate checked (sslmode={VERIFY_FULL}), not"
            f" sslmode={sslmode}"
        )
    if not sslrootcert:
        raise InsecureTransport(
            f"{told} names {host}, which is not this machine: give the authority that signed its"
            f" certificate, sslrootcert=<file> in WAREHOUSE_URL's query or {SSLROOTCERT_VARIABLE}"
            " (sslrootcert=system for the system's authorities)"
        )
    if sslrootcert != "system" and not Path(sslrootcert).is_file():
        raise InsecureTransport(f"{told}: sslrootcert {sslrootcert} is not a file")
    return Transport(VERIFY_FULL, sslrootcert)
