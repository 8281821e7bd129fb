"""`make setup` writes fresh secrets once and keeps them on every later run."""

from __future__ import annotations

from pyrage import x25519

from common import settings
from common.env_file import DERIVED, EDITABLE, GENERATED, is_secret, read_env_file, write_env_file


def test_first_setup_generates_every_secret(tmp_path):
    env_file = tmp_path / ".env"
    created = write_env_file(env_file)
    values = read_env_file(env_file)
    assert created == list(GENERATED)
    assert set(values) == set(GENERATED) | set(EDITABLE) | set(DERIVED)
    assert all(values[name] for name in GENERATED)
    # what encrypts backups is the public half of what reads them
    public = x25519.Identity.from_str(values["BACKUP_IDENTITY"]).to_public()
    assert values["BACKUP_RECIPIENT"] == str(public) and not is_secret("BACKUP_RECIPIENT")
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"


def test_second_setup_keeps_the_secrets_it_made(tmp_path):
    env_file = tmp_path / ".env"
    write_env_file(env_file)
    first = read_env_file(env_file)
    assert write_env_file(env_file) == []
    assert read_env_file(env_file) == first


def test_two_machines_get_different_secrets(tmp_path):
    one, two = tmp_path / "one.env", tmp_path / "two.env"
    write_env_file(one)
    write_env_file(two)
    assert (
        read_env_file(one)["WAREHOUSE_ADMIN_PASSWORD"]
        != read_env_file(two)["WAREHOUSE_ADMIN_PASSWORD"]
    )


def test_an_edited_alert_setting_survives_the_next_setup(tmp_path):
    env_file = tmp_path / ".env"
    write_env_file(env_file)
    env_file.write_text(
        env_file.read_text().replace("SMTP_HOST=localhost", "SMTP_HOST=mail.example")
    )
    write_env_file(env_file)
    assert read_env_file(env_file)["SMTP_HOST"] == "mail.example"


def test_setup_writes_a_certificate_for_compose_postgresql_once(tmp_path, monkeypatch):
    from cryptography import x509

    from warehouse import tls_certificates

    monkeypatch.setattr(settings, "VAR_DIR", tmp_path)
    folder = tls_certificates.ensure_compose_certificates()
    assert folder == tmp_path / "secrets" / "postgres-tls"
    assert tls_certificates.ensure_compose_certificates() is None  # kept, not made again
    assert oct((folder / tls_certificates.KEY).stat().st_mode & 0o777) == "0o600"
    server = x509.load_pem_x509_certificate((folder / tls_certificates.CERTIFICATE).read_bytes())
    authority = x509.load_pem_x509_certificate((folder / tls_certificates.CA).read_bytes())
    server.verify_directly_issued_by(authority)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "postgres" in names.get_values_for_type(x509.DNSName)
