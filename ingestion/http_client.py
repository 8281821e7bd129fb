"""A resilient HTTP client for the APIs the loaders pull from: OAuth2 client-credentials tokens
refreshed when they expire, retries with exponential backoff and jitter on 429, 5xx and network
errors (honouring Retry-After), and a circuit breaker that stops calling an API that keeps failing.

Nothing here logs a token, a secret or a response body.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

import requests

log = logging.getLogger(__name__)

RETRYABLE = {429, 500, 502, 503, 504}


class CircuitOpen(Exception):
    """The API failed too many times in a row; the run stops instead of hammering it."""


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: float = 0.2  # seconds before the first retry; doubles each time
    max_delay: float = 5.0
    max_retry_after: float = 30.0  # a Retry-After longer than this is capped
    failures_to_open: int = 8  # consecutive failed attempts that open the circuit
    timeout: float = 10.0  # per request


class ApiClient:
    def __init__(
        self,
        name: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        policy: RetryPolicy | None = None,
    ):
        self.name = name
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self.policy = policy or RetryPolicy()
        self.session = requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0
        self.requests_made = 0
        self.consecutive_failures = 0
        self._rng = random.Random()

    # --- the circuit breaker and backoff -------------------------------------------------------

    def _failed(self, what: str) -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.policy.failures_to_open:
            raise CircuitOpen(
                f"{self.name}: circuit open after {self.consecutive_failures} consecutive failed"
                f" requests (last: {what}); stopped calling the API"
            )

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.policy.base_delay * 2**attempt, self.policy.max_delay)
        delay = self._rng.uniform(delay / 2, delay)  # jitter
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), self.policy.max_retry_after))
        time.sleep(delay)

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        """One request with retries; returns the first response that is not retryable."""
        attempt = 0
        while True:
            self.requests_made += 1
            try:
                response = self.session.request(method, url, timeout=self.policy.timeout, **kwargs)
            except requests.RequestException as error:
                self._failed(type(error).__name__)
                self._wait(attempt, None)
                attempt += 1
                continue
            if response.status_code in RETRYABLE:
                log.info("%s: %s answered %d; retrying", self.name, method, response.status_code)
                self._failed(f"HTTP {response.status_code}")
                self._wait(attempt, response.headers.get("Retry-After"))
                attempt += 1
                continue
            self.consecutive_failures = 0
            return response

    # --- OAuth2 client credentials ---------------------------------------------------------------

    def _refresh_token(self) -> None:
        response = self._send(
            "POST",
            self.token_url,
            data={"grant_type": "client_credentials"},
            auth=(self._client_id, self._client_secret),
        )
        if response.status_code != 200:
            raise PermissionError(f"{self.name}: the token endpoint refused the client credentials")
        body = response.json()
        self._token = body["access_token"]
        expires_in = float(body.get("expires_in", 300))
        self._token_expires = time.monotonic() + max(expires_in - 5, expires_in / 2)
        log.info("%s: new access token (valid %.0fs)", self.name, expires_in)

    def get_json(self, url: str, params: dict | None = None) -> dict:
        """GET with a valid bearer token; a 401 (token expired early) gets one fresh token."""
        for _ in range(2):
            if self._token is None or time.monotonic() >= self._token_expires:
                self._refresh_token()
            response = self._send(
                "GET",
                url,
                params=params,
                headers={
                    "Authorization": f"Bearer {self._token}",
                    "Accept": "application/fhir+json",
                },
            )
            if response.status_code == 401:
                self._token = None
                continue
            response.raise_for_status()
            return response.json()
        raise PermissionError(f"{self.name}: refused a freshly issued token")
