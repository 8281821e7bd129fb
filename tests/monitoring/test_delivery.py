"""Delivery that means delivery (monitoring/notify.py), against a real webhook and the warehouse's
outbox: a redirect answered to the POST is a failed attempt, never followed to a GET whose 2xx
would mark the alert sent; it is tried again after its backoff; every attempt and its answer is
recorded; a 2xx answered to the POST itself delivers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from monitoring import notify
from warehouse.throwaway import free_port


class Endpoints:
    """POST /moved answers 302 to GET /landing (which answers 200 to a GET); POST /alerts answers
    204. Keeps every request: (method, path, body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        endpoints = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                endpoints.requests.append((method, self.path, self.rfile.read(length)))
                if method == "POST" and self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/landing")
                elif method == "POST" and self.path == "/alerts":
                    self.send_response(204)
                elif method == "GET" and self.path == "/landing":
                    self.send_response(200)
                else:
                    self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                self._answer("POST")

            def do_GET(self) -> None:
                self._answer("GET")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def endpoints() -> Iterator[Endpoints]:
    served = Endpoints()
    threading.Thread(target=served.server.serve_forever, daemon=True).start()
    yield served
    served.server.shutdown()


def _queued_notification(warehouse) -> str:
    """An open critical alert and its notification, as the processor writes them."""
    alert_key = str(uuid.uuid4())
    with psycopg.connect(**warehouse.connect_kwargs("monitor")) as conn:
        conn.execute(
            """
            insert into monitoring.alerts (alert_key, patient_key, ward, room, condition,
                raised_at, raised_sequence, raised_reading_key, news2_score, news2_parts)
            values (%s, %s, 'ICU', '7', 'critical', now(), 1, %s, 8, %s)
            """,
            (alert_key, str(uuid.uuid4()), str(uuid.uuid4()), json.dumps({"heart_rate_bpm": 3})),
        )
        notify.queue(conn, alert_key, "raised")
        [(key,)] = conn.execute(
            "select notification_key::text from monitoring.notifications where alert_key = %s",
            (alert_key,),
        ).fetchall()
    return key


def _deliver_when_due(warehouse, key: str, timeout: float = 30) -> None:
    """deliver_due, called as the notifier thread does, until it has attempted `key` once more."""
    with psycopg.connect(**warehouse.connect_kwargs("monitor")) as conn:
        [(before,)] = conn.execute(
            "select attempts from monitoring.notifications where notification_key = %s", (key,)
        ).fetchall()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            notify.deliver_due(conn)
            [(attempts,)] = conn.execute(
                "select attempts from monitoring.notifications where notification_key = %s",
                (key,),
            ).fetchall()
            conn.commit()
            if attempts > before:
                return
            time.sleep(0.2)
    raise AssertionError(f"{key} not attempted again within {timeout} s")


def _attempts(warehouse, key: str) -> list[tuple]:
    with psycopg.connect(**warehouse.connect_kwargs("clinical_ops")) as conn:
        return conn.execute(
            "select attempt, channel, http_status, outcome, detail"
            " from monitoring.delivery_attempts where notification_key = %s order by attempt",
            (key,),
        ).fetchall()


def _posted(endpoints: Endpoints, key: str) -> list[tuple[str, dict]]:
    """(path, message) of each POST of notification `key` (another test's may come too: the
    notifier sends every notification that is due)."""
    return [
        (path, message)
        for method, path, body in endpoints.requests
        if method == "POST" and (message := json.loads(body))["notification"] == key
    ]


def _sent_at(warehouse, key: str):
    with psycopg.connect(**warehouse.connect_kwargs("monitor")) as conn:
        return conn.execute(
            "select sent_at from monitoring.notifications where notification_key = %s", (key,)
        ).fetchone()[0]


def test_a_webhook_answering_302_to_a_get_endpoint_is_a_failed_delivery_tried_again(
    test_warehouse, endpoints, monkeypatch
):
    warehouse = test_warehouse.warehouse
    monkeypatch.setenv("CLINICAL_ALERT_WEBHOOK_URL", f"{endpoints.base}/moved")
    key = _queued_notification(warehouse)

    _deliver_when_due(warehouse, key)
    started = time.monotonic()
    _deliver_when_due(warehouse, key)  # again, once its backoff (5 s) is over
    assert time.monotonic() - started >= notify.RETRY_SECONDS - 1

    assert _sent_at(warehouse, key) is None, "a redirect marked the alert sent"
    assert [method for method, _, _ in endpoints.requests if method != "POST"] == []  # no GET
    assert len(_posted(endpoints, key)) == 2
    assert _attempts(warehouse, key) == [
        (1, "webhook", 302, "refused", "HTTP 302 Found"),
        (2, "webhook", 302, "refused", "HTTP 302 Found"),
    ]

    # the right address: the POST itself answered 204, and only that delivers
    monkeypatch.setenv("CLINICAL_ALERT_WEBHOOK_URL", f"{endpoints.base}/alerts")
    _deliver_when_due(warehouse, key)
    assert _sent_at(warehouse, key) is not None
    assert _attempts(warehouse, key)[-1] == (3, "webhook", 204, "delivered", None)
    assert [path for path, _ in _posted(endpoints, key)] == ["/moved", "/moved", "/alerts"]


def test_a_webhook_that_does_not_answer_is_a_failed_attempt_with_no_status(
    test_warehouse, monkeypatch
):
    warehouse = test_warehouse.warehouse
    monkeypatch.setenv("CLINICAL_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/alerts")
    key = _queued_notification(warehouse)
    _deliver_when_due(warehouse, key)
    assert _sent_at(warehouse, key) is None
    assert _attempts(warehouse, key) == [(1, "webhook", None, "failed", "URLError")]
