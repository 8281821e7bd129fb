"""Clinical alert notifications: written to monitoring.notifications (the outbox) in the same
transaction as the alert, then delivered to the channel `.env` names:

- CLINICAL_ALERT_WEBHOOK_URL: a JSON POST, the notification's key in an `Idempotency-Key` header;
- otherwise email to CLINICAL_ALERT_EMAIL_TO through the SMTP settings, the key in the Message-ID.

A notification says where and how bad, never who: condition, ward, room, NEWS2 score and its
parts, the time of day it was raised and the alert's key (for the acknowledge command). No name,
no record number, no date, not even the patient's surrogate key: email is no safe channel for PHI,
and the bedside needs none of it.

Delivery is at least once: a notification is marked sent after the channel took it, so a crash in
between sends it again with the same key, which a receiver uses to drop the repeat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.request
import uuid
from typing import Any

import psycopg

from ingestion import settings
from ingestion.orchestration.notifications import send_email

log = logging.getLogger(__name__)

MESSAGE_FIELDS = """
    jsonb_build_object(
        'notification', %(key)s::text,
        'kind', %(kind)s::text,
        'alert', alert_key,
        'condition', condition,
        'ward', ward,
        'room', room,
        'news2_score', news2_score,
        'news2_parts', news2_parts,
        'raised_time', to_char(raised_at at time zone 'UTC', 'HH24:MI:SS "UTC"')
    )
"""


def queue(conn: psycopg.Connection, alert_key: str, kind: str) -> None:
    """The notification of `kind` (raised | escalated) for an alert, once (its key: alert and
    kind): a replay that raises the same alert queues nothing new."""
    conn.execute(
        f"""
        insert into monitoring.notifications (notification_key, alert_key, kind, message)
        select %(key)s::uuid, alert_key, %(kind)s, {MESSAGE_FIELDS}
        from monitoring.alerts where alert_key = %(alert)s
        on conflict (notification_key) do nothing
        """,
        {"alert": alert_key, "kind": kind, "key": _key(alert_key, kind)},
    )


def _key(alert_key: str, kind: str) -> str:
    return str(uuid.UUID(hashlib.md5(f"{alert_key}|{kind}".encode()).hexdigest()))


def deliver_pending(conn: psycopg.Connection) -> int:
    """Send every unsent notification, oldest first; return how many were sent."""
    pending = conn.execute(
        "select notification_key::text, message from monitoring.notifications"
        " where sent_at is null order by created_at, notification_key"
    ).fetchall()
    conn.commit()
    sent = 0
    for key, message in pending:
        error = _send(key, message)
        conn.execute(
            "update monitoring.notifications set attempts = attempts + 1, last_error = %s,"
            " sent_at = case when %s then now() end where notification_key = %s",
            (error, error is None, key),
        )
        conn.commit()
        sent += error is None
    return sent


def _send(key: str, message: dict[str, Any]) -> str | None:
    """Deliver one message; None when the channel took it, else the error's type."""
    settings.load_env()
    webhook = os.environ.get("CLINICAL_ALERT_WEBHOOK_URL")
    if webhook:
        request = urllib.request.Request(
            webhook,
            data=json.dumps(message).encode(),
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except OSError as error:
            log.error("notification %s not delivered: %s", key, type(error).__name__)
            return type(error).__name__
        return None
    subject = (
        f"{message['kind'].upper()} {message['condition']} alert: {message['ward']} room"
        f" {message['room']}, NEWS2 {message['news2_score']}"
    )
    body = "\n".join(f"{name}: {value}" for name, value in message.items())
    recipients = os.environ.get("CLINICAL_ALERT_EMAIL_TO")
    if send_email(subject, body, recipients=recipients, message_id=f"<{key}@monitoring>"):
        return None
    return "not sent by email"
