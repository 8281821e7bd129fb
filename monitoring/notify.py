"""Clinical alert notifications: written to monitoring.notifications (the outbox) in the same
transaction as the alert, then delivered to the channel `.env` names:

- CLINICAL_ALERT_WEBHOOK_URL: a JSON POST, the notification's key in an `Idempotency-Key` header;
- otherwise email to CLINICAL_ALERT_EMAIL_TO through the SMTP settings, the key in the Message-ID.

A notification says where and how bad, never who: condition, severity, the action an extreme
value asks for ("verify patient now") and the vitals it names, ward, room, NEWS2 score and its
parts, the inputs the score rested on and where each came from (device, patient setting or
assumed: news2_inputs.py), the label "NEWS2 not validated for this patient: use PEWS / MEOWS"
where it applies (not why: a pregnancy is nobody's email), the time of day it was raised and the
alert's key (for the acknowledge command). No name,
no record number, no date, not even the patient's surrogate key: email is no safe channel for PHI,
and the bedside needs none of it.

An operational alert (operational.py: a feed stopping, a clock ahead, a channel down) goes to the
same channel as a `kind: operational` message naming what stopped, never a patient.

Delivery is at least once: a notification is marked sent after the channel took it, so a crash in
between sends it again with the same key, which a receiver uses to drop the repeat. A webhook has
taken it only when it answered the POST itself with a 2xx: a redirect is not followed (urllib
would turn the POST into a GET without its body, and a 2xx to that GET delivers nothing), so it
counts as refused. A notification the channel refuses is tried again with a backoff (5 s,
doubling, at most 5 minutes); every attempt and its answer is kept in
monitoring.delivery_attempts. Delivery runs in its own thread (processor.Notifier), so a slow
channel never holds up scoring.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from common import settings
from common.mail import send_email

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 5
RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 300

MESSAGE_FIELDS = """
    jsonb_build_object(
        'notification', %(key)s::text,
        'kind', %(kind)s::text,
        'alert', alert_key,
        'condition', condition,
        'severity', case condition when 'warning' then 'warning' else 'critical' end,
        'action', case condition when 'extreme' then 'verify patient now' end,
        'extreme_vitals', extreme_vitals,
        'ward', ward,
        'room', room,
        'news2_score', news2_score,
        'news2_parts', news2_parts,
        'news2_inputs', news2_inputs,
        'label', case when news2_not_validated is not null
            then 'NEWS2 not validated for this patient: use PEWS / MEOWS' end,
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


def queue_operational(conn: psycopg.Connection, operational_alert_key: str) -> None:
    """The notification of an operational alert (operational.py), to the same channel: what
    stopped, never who is affected."""
    conn.execute(
        """
        insert into monitoring.notifications (notification_key, operational_alert_key, kind,
            message)
        select %(key)s::uuid, operational_alert_key, 'operational', jsonb_build_object(
            'notification', %(key)s::text,
            'kind', 'operational',
            'condition', condition,
            'severity', 'operational',
            'action', 'tell the on-call data engineer; meanwhile observe patients as usual',
            'detail', detail,
            'raised_time', to_char(raised_at at time zone 'UTC', 'HH24:MI:SS "UTC"')
        )
        from monitoring.operational_alerts where operational_alert_key = %(alert)s
        on conflict (notification_key) do nothing
        """,
        {"alert": operational_alert_key, "key": _key(operational_alert_key, "operational")},
    )


def _key(alert_key: str, kind: str) -> str:
    return str(uuid.UUID(hashlib.md5(f"{alert_key}|{kind}".encode()).hexdigest()))


@dataclass(frozen=True)
class Answer:
    """What one delivery attempt got back: `outcome` delivered, refused (the channel answered
    no, or a redirect) or failed (no answer); the HTTP status a webhook gave; why not delivered
    (a status line or an error's type, never the message)."""

    channel: str
    outcome: str
    http_status: int | None = None
    detail: str | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"


def deliver_due(conn: psycopg.Connection, limit: int = 100) -> int:
    """Send the unsent notifications that are due, oldest first; return how many were sent.

    Each is first pushed back by its backoff (RETRY_SECONDS, doubling with each attempt up to
    MAX_RETRY_SECONDS) and committed, then sent, then its attempt recorded and, when the channel
    took it, marked sent: one whose sending or marking fails comes round again after its
    backoff, never in a tight loop."""
    due = conn.execute(
        "select notification_key::text, message from monitoring.notifications"
        " where sent_at is null and next_attempt_at <= now()"
        " order by created_at, notification_key limit %s",
        (limit,),
    ).fetchall()
    conn.commit()
    sent = 0
    for key, message in due:
        attempt, attempted_at = conn.execute(
            """
            update monitoring.notifications set attempts = attempts + 1,
                next_attempt_at = now() + make_interval(secs => least(
                    %(retry)s * power(2, attempts), %(max_retry)s))
            where notification_key = %(key)s
            returning attempts, now()
            """,
            {"key": key, "retry": RETRY_SECONDS, "max_retry": MAX_RETRY_SECONDS},
        ).fetchone()
        conn.commit()
        answer = _send(key, message)
        _record(conn, key, attempt, attempted_at, answer)
        conn.commit()
        sent += answer.delivered
    return sent


def _record(
    conn: psycopg.Connection, key: str, attempt: int, attempted_at: datetime, answer: Answer
) -> None:
    conn.execute(
        """
        insert into monitoring.delivery_attempts (notification_key, attempt, channel,
            attempted_at, http_status, outcome, detail)
        values (%(key)s, %(attempt)s, %(channel)s, %(attempted_at)s, %(status)s, %(outcome)s,
            %(detail)s)
        """,
        {
            "key": key, "attempt": attempt, "channel": answer.channel,
            "attempted_at": attempted_at, "status": answer.http_status,
            "outcome": answer.outcome, "detail": answer.detail,
        },
    )  # fmt: skip
    conn.execute(
        "update monitoring.notifications set last_error = %(error)s::text,"
        " sent_at = case when %(delivered)s then now() end"
        " where notification_key = %(key)s",
        {"error": answer.detail, "delivered": answer.delivered, "key": key},
    )


def _send(key: str, message: dict[str, Any]) -> Answer:
    """Deliver one message; what the channel answered. An error is named by its type: its text
    may quote what was sent."""
    settings.load_env()
    webhook = os.environ.get("CLINICAL_ALERT_WEBHOOK_URL")
    channel = "webhook" if webhook else "email"
    try:
        if webhook:
            return _post(webhook, key, message)
        recipients = os.environ.get("CLINICAL_ALERT_EMAIL_TO")
        if not recipients:
            return Answer(
                "none", "failed",
                detail="neither CLINICAL_ALERT_WEBHOOK_URL nor CLINICAL_ALERT_EMAIL_TO is set",
            )  # fmt: skip
        subject = _subject(message)
        body = "\n".join(f"{name}: {value}" for name, value in message.items())
        if send_email(subject, body, recipients=recipients, message_id=f"<{key}@monitoring>"):
            return Answer("email", "delivered")
        return Answer("email", "refused", detail="not sent by email")
    except Exception as error:  # noqa: BLE001 - one bad message must not stop the others
        log.error("notification %s not delivered: %s", key, type(error).__name__)
        return Answer(channel, "failed", detail=type(error).__name__)


def _subject(message: dict[str, Any]) -> str:
    """An email's subject: one line, whatever a ward's name or a detail holds."""
    if message["kind"] == "operational":  # the detail (file names, devices) in the body only
        return f"OPERATIONAL alert: {message['condition']}"
    action = (
        f" VERIFY PATIENT NOW: {', '.join(message['extreme_vitals'])}"
        if message.get("action")
        else ""
    )
    label = f" ({message['label']})" if message.get("label") else ""
    return " ".join(
        f"{message['kind'].upper()} {message['condition']} alert: {message['ward']} room"
        f" {message['room']}, NEWS2 {message['news2_score']}{action}{label}".split()
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect answered to the POST is its answer: not followed (urllib would follow it as a
    body-less GET), so urlopen raises it as an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _post(url: str, key: str, message: dict[str, Any]) -> Answer:
    """POST `message` to the webhook: delivered only on a 2xx answered to this POST."""
    request = urllib.request.Request(
        url,
        data=json.dumps(message).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=SEND_TIMEOUT_SECONDS) as response:
            response.read()
            status, reason = response.status, response.reason
    except urllib.error.HTTPError as refused:  # 3xx (not followed), 4xx, 5xx
        refused.close()
        log.error("notification %s refused by the webhook: HTTP %d", key, refused.code)
        return Answer("webhook", "refused", refused.code, f"HTTP {refused.code} {refused.reason}")
    if 200 <= status < 300:
        return Answer("webhook", "delivered", status)
    log.error("notification %s not taken by the webhook: HTTP %d", key, status)
    return Answer("webhook", "refused", status, f"HTTP {status} {reason}")
