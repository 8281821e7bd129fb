"""Email goes with STARTTLS by default, to a server whose certificate is checked, or not at all
(common/mail.py): against real SMTP servers (aiosmtpd), one without TLS, one with a certificate
from an authority of the test's own."""

from __future__ import annotations

import ssl

import pytest
from aiosmtpd.controller import Controller

from common import settings
from common.mail import send_email
from tests.dags.smtp_sink import _Keep
from warehouse.throwaway import free_port
from warehouse.tls_certificates import CA, CERTIFICATE, KEY, write_server_certificates


@pytest.fixture
def smtp_server(tmp_path, monkeypatch):
    """A function starting an SMTP server (with STARTTLS when `tls`): its received messages."""
    controllers = []

    def start(tls: bool) -> list:
        keep, port = _Keep(), free_port()
        context = None
        if tls:
            folder = write_server_certificates(tmp_path / "smtp_tls", ["127.0.0.1"], "mail test CA")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(folder / CERTIFICATE, folder / KEY)
        controller = Controller(
            keep, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=tls
        )
        controller.start()
        controllers.append(controller)
        for name, value in {
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_USER": "",
            "ALERT_EMAIL_TO": "on-call@example.org", "ALERT_EMAIL_FROM": "warehouse@example.org",
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(settings, "ENV_FILE", tmp_path / "no.env")  # the test's settings only
        monkeypatch.delenv("SMTP_STARTTLS", raising=False)
        return keep.messages

    yield start
    for controller in controllers:
        controller.stop()


def test_by_default_nothing_goes_to_a_server_without_starttls(smtp_server):
    received = smtp_server(tls=False)
    assert send_email("bed 4: NEWS2 7", "body") is False
    assert received == []


def test_by_default_nothing_goes_to_a_server_whose_certificate_is_not_vouched_for(smtp_server):
    received = smtp_server(tls=True)
    assert send_email("bed 4: NEWS2 7", "body") is False
    assert received == []


def test_with_its_authority_trusted_the_message_goes_encrypted(smtp_server, tmp_path, monkeypatch):
    received = smtp_server(tls=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "smtp_tls" / CA))
    assert send_email("bed 4: NEWS2 7", "body") is True
    assert [message["Subject"] for message in received] == ["[healthcare-warehouse] bed 4: NEWS2 7"]


def test_starttls_off_only_when_asked(smtp_server, monkeypatch):
    received = smtp_server(tls=False)
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    assert send_email("bed 4: NEWS2 7", "body") is True
    assert len(received) == 1
