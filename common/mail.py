"""Send an email through the SMTP server `.env` names (SMTP_HOST, SMTP_PORT, SMTP_STARTTLS,
SMTP_USER, SMTP_PASSWORD, ALERT_EMAIL_FROM, ALERT_EMAIL_TO): on-call alerts from Airflow and
clinical alerts from the vitals processor share it.

STARTTLS is on unless SMTP_STARTTLS=false: the message (a clinical alert names a bed) goes
encrypted, to a server whose certificate the system's authorities vouch for (or those in
SSL_CERT_FILE, for a relay with a private CA), or not at all. A login is never sent in clear.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from common import settings

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "[healthcare-warehouse]"


def send_email(
    subject: str,
    body: str,
    attachments: list[Path] = (),
    recipients: str | None = None,
    message_id: str | None = None,
) -> bool:
    """Send one message to `recipients` (ALERT_EMAIL_TO by default); False (and a log line) when
    it cannot be sent."""
    import smtplib  # here, not at the top: DAG files import this module when they are parsed
    import ssl
    from email.message import EmailMessage

    settings.load_env()
    host = os.environ.get("SMTP_HOST")
    recipients = recipients or os.environ.get("ALERT_EMAIL_TO")
    if not host or not recipients:
        log.warning("SMTP_HOST or ALERT_EMAIL_TO is not set: not sent: %s", subject)
        return False
    message = EmailMessage()
    message["Subject"] = f"{SUBJECT_PREFIX} {subject}"
    message["From"] = os.environ.get("ALERT_EMAIL_FROM", "airflow@localhost")
    message["To"] = recipients
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(body)
    for path in attachments:
        message.add_attachment(path.read_bytes(), "text", "html", filename=path.name)
    starttls = os.environ.get("SMTP_STARTTLS", "true").lower() != "false"
    user = os.environ.get("SMTP_USER")
    if user and not starttls:
        log.error("SMTP_USER is set without SMTP_STARTTLS=true: not sending a password in clear")
        return False
    try:
        with smtplib.SMTP(host, int(os.environ.get("SMTP_PORT", "25")), timeout=30) as smtp:
            if starttls:
                smtp.starttls(
                    context=ssl.create_default_context()
                )  # the server's certificate checked
            if user:
                smtp.login(user, settings.secret("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        log.error("could not send %r through %s: %s", subject, host, type(error).__name__)
        return False
    return True
