"""A fake regulator (public-security) report receiver for tests, ``anju reporting
fake-regulator`` and the demo.

It is a real HTTP server on loopback with its own SM2 key pair. It opens each envelope with its
private key, verifies the platform's signature, de-duplicates by ``Idempotency-Key`` and keeps
what it received. It can be told to go down (the port closes), to answer 5xx, or to be slow.
It is NOT a connection to any real public-security system, whose interface and onboarding this
project does not have; it speaks anju's own documented wire format (docs/reporting.md).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from anju.errors import AnjuError, InvalidInput
from anju.kit.crypto import SM2PrivateKey, SM2PublicKey
from anju.reporting.wire import IDEMPOTENCY_HEADER, MAX_ENVELOPE_BYTES, PATH, open_report


@dataclass
class Received:
    """What the regulator has: accepted reports by id, duplicates, and refusals."""

    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)  # error codes
    requests: int = 0


class FakeRegulator:
    """A report receiver on loopback (see module docstring)."""

    def __init__(self, platform_key: SM2PublicKey, key: SM2PrivateKey | None = None) -> None:
        self.key = key or SM2PrivateKey.generate()
        self.platform_key = platform_key
        self.received = Received()
        self.fail_with: int | None = None  # answer this status to every report (e.g. 503)
        self.delay_seconds = 0.0  # answer this much later (a slow regulator)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None

    @property
    def public_key(self) -> SM2PublicKey:
        return self.key.public_key

    @property
    def url(self) -> str:
        assert self._address is not None, "start the regulator first"
        return f"http://{self._address[0]}:{self._address[1]}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread (again on the same port after :meth:`stop`)."""
        if self._address is not None and port == 0:
            host, port = self._address
        regulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0") or "0")
                if length > MAX_ENVELOPE_BYTES:
                    status, answer = 413, {"error": "too_large"}
                else:
                    body = self.rfile.read(length)
                    status, answer = regulator.answer(self.path, dict(self.headers.items()), body)
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return  # request lines carry no PI, but keep tests quiet

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256  # a sender posts a batch at once: no refused connects

        self._server = Server((host, port), Handler)
        self._address = (str(self._server.server_address[0]), int(self._server.server_address[1]))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Go down: the port stops accepting connections."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeRegulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """The status and JSON answer to one request (the server's whole logic)."""
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.received.requests += 1
        if path != PATH:
            return 404, {"error": "not_found"}
        if self.fail_with is not None:
            return self.fail_with, {"error": "unavailable"}
        key = lowered.get(IDEMPOTENCY_HEADER.lower(), "")
        try:
            if not key:
                raise InvalidInput("missing idempotency key")
            payload = open_report(body, self.key, self.platform_key)
            if payload["report_id"] != key:
                raise InvalidInput("idempotency key is not the report id")
        except AnjuError as exc:
            with self._lock:
                self.received.refused.append(exc.code)
            return 400, {"error": exc.code}
        with self._lock:
            if key in self.received.reports:
                self.received.duplicates += 1
                return 200, {"status": "duplicate", "report_id": key}
            self.received.reports[key] = payload
        return 201, {"status": "accepted", "report_id": key}
