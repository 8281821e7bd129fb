"""A certificate authority and a server certificate for a PostgreSQL that takes TLS connections
only: docker-compose.yml's (make setup writes them into var/secrets/postgres-tls/) and the TLS
test's. Clients check the server with `sslmode=verify-full` against `ca.crt`
(warehouse/transport.py).

ca.crt       the authority's certificate: what clients trust (not a secret)
server.crt   the server's, for the names it is reached by
server.key   the server's private key (owner-only); the authority's own key is not kept, so no
             other certificate can be issued from it
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common import settings
from common.whole_files import written_whole

CA, CERTIFICATE, KEY = "ca.crt", "server.crt", "server.key"
VALID_DAYS = 825  # the longest a server certificate is trusted by browsers' rules; renew by setup


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_server_certificates(folder: Path, names: list[str], authority_name: str) -> Path:
    """A fresh authority called `authority_name` and a certificate for `names` (host names or IP
    addresses) signed by it, into `folder`; the folder."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(authority_name))
        .issuer_name(_name(authority_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    alternative_names = [_alternative_name(name) for name in names]
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = serialization.Encoding.PEM
    with written_whole(folder / KEY, "wb", owner_only=True) as key_file:
        key_file.write(
            server_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    # owner-only as everything under var/ (common/private_files.py), though none is a secret
    with written_whole(folder / CERTIFICATE, "wb", owner_only=True) as certificate_file:
        certificate_file.write(server.public_bytes(pem))
    with written_whole(folder / CA, "wb", owner_only=True) as ca_file:
        ca_file.write(ca.public_bytes(pem))
    return folder


def compose_certificates_dir() -> Path:
    return settings.VAR_DIR / "secrets" / "postgres-tls"


# the names docker-compose.yml's PostgreSQL is reached by: its service's, and the host's port
COMPOSE_SERVER_NAMES = ["postgres", "localhost", "127.0.0.1"]


def ensure_compose_certificates() -> Path | None:
    """docker-compose.yml's PostgreSQL's certificates, written once (make setup); the folder if
    written now."""
    folder = compose_certificates_dir()
    if all((folder / name).exists() for name in (CA, CERTIFICATE, KEY)):
        return None
    return write_server_certificates(
        folder, COMPOSE_SERVER_NAMES, "healthcare-warehouse docker-compose CA"
    )


def _alternative_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
