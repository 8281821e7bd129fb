"""A local webhook that receives the vitals processor's clinical alert notifications and prints
them: set CLINICAL_ALERT_WEBHOOK_URL to its address to watch alerts without a paging system.

    python -m demo.webhook_receiver --port 8099
    # CLINICAL_ALERT_WEBHOOK_URL=http://127.0.0.1:8099/alerts in .env

The tests and benchmarks/monitoring.py use it to read what was sent, and when.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from warehouse.throwaway import free_port


@dataclass(frozen=True)
class Delivery:
    received_at: float  # time.time()
    idempotency_key: str
    message: dict[str, Any]


class WebhookReceiver:
    """A local HTTP endpoint for CLINICAL_ALERT_WEBHOOK_URL, keeping every delivery."""

    def __init__(self, port: int | None = None, echo: bool = False) -> None:
        self.deliveries: list[Delivery] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                delivery = Delivery(time.time(), self.headers["Idempotency-Key"], json.loads(body))
                sink.deliveries.append(delivery)
                if echo:
                    print(json.dumps(delivery.message), flush=True)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()

    def of_kind(self, kind: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.message["kind"] == kind]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    receiver = WebhookReceiver(args.port, echo=True)
    print(f"receiving clinical alerts on {receiver.url}", flush=True)
    receiver.server.serve_forever()


if __name__ == "__main__":
    main()
