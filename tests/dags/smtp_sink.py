"""A local SMTP server that keeps every message it receives, for the alert email tests."""

from __future__ import annotations

import email
import time
from email.message import Message
from typing import Self

from aiosmtpd.controller import Controller

from warehouse.throwaway import free_port


class _Keep:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


class SmtpSink:
    def __init__(self) -> None:
        self.port = free_port()
        self._handler = _Keep()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def env(self) -> dict[str, str]:
        """The `.env` settings that send alerts here."""
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.port),
            "SMTP_STARTTLS": "false",
            "SMTP_USER": "",
            "ALERT_EMAIL_FROM": "healthcare-warehouse@example.test",
            "ALERT_EMAIL_TO": "on-call@example.test",
        }

    @property
    def messages(self) -> list[Message]:
        return list(self._handler.messages)

    def wait_for(self, subject_part: str, timeout: float = 120) -> Message:
        """The first message whose subject contains `subject_part`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if subject_part in message["Subject"]:
                    return message
            time.sleep(0.5)
        subjects = [message["Subject"] for message in self.messages]
        raise AssertionError(f"no email about {subject_part!r} in {timeout}s; got {subjects}")


def body_of(message: Message) -> str:
    """The message's text part."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode().replace("\r\n", "\n")
    raise AssertionError("the message has no text part")
