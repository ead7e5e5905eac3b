"""A fake CTID-style identity service for tests and ``anju people fake-ctid`` (the demo).

It is a real HTTP server on loopback speaking the wire of :mod:`ctid_wire`: it checks the
caller's HMAC, timestamp and single-use nonce, decrypts the claim with its SM2 key, looks the
identity up in the identities it was given, and signs its answer. It is NOT a connection to the
real 公安部 CTID platform, which needs an agreement and credentials this project does not have.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from anju.errors import AnjuError
from anju.kit.crypto import SM2PrivateKey, random_bytes
from anju.people.validation.documents import normalise_number
from anju.people.verification.ctid_wire import (
    MAX_SKEW_SECONDS,
    PATH,
    CtidConfig,
    open_claim,
    request_mac,
    sign_answer,
)


class FakeCtidService:
    """Identities it knows, and a loopback HTTP server answering for them."""

    def __init__(self, *, now: Callable[[], float] = time.time) -> None:
        self.key = SM2PrivateKey.generate()
        self.app_id = "anju-test"
        self.app_secret = random_bytes(32)
        self._now = now
        self._identities: dict[tuple[str, str], str] = {}
        self._nonces: set[str] = set()
        self._lock = threading.Lock()
        self.requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_identity(self, document_type: str, document_number: str, name: str) -> None:
        """A person the service knows."""
        self._identities[(document_type, normalise_number(document_number))] = name

    def config(self) -> CtidConfig:
        """What a client of this service needs (after :meth:`start`)."""
        return CtidConfig(self.url, self.app_id, self.app_secret, self.key.public_key)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the service first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread; the base URL."""
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(min(length, 65536))
                status, answer = service.answer(self.path, dict(self.headers.items()), body)
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                if status == 200:
                    self.send_header("x-ctid-signature", sign_answer(service.key, raw))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return  # no access log: request lines carry no PI, but keep tests quiet

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """The status and JSON answer to one request (the server's whole logic)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        if path != PATH:
            return 404, {"error": "not_found"}
        timestamp, nonce = lowered.get("x-ctid-timestamp", ""), lowered.get("x-ctid-nonce", "")
        expected = request_mac(self.app_secret, timestamp, nonce, body)
        if lowered.get("x-ctid-app") != self.app_id or not hmac.compare_digest(
            expected, lowered.get("x-ctid-signature", "")
        ):
            return 401, {"error": "bad_signature"}
        if not timestamp.isdigit() or abs(int(timestamp) - self._now()) > MAX_SKEW_SECONDS:
            return 401, {"error": "stale_request"}
        with self._lock:
            if nonce in self._nonces:
                return 401, {"error": "replayed_nonce"}
            self._nonces.add(nonce)
            self.requests += 1
        try:
            request = json.loads(body)
            claim = open_claim(self.key, request)
        except (ValueError, KeyError, TypeError, AnjuError):  # malformed, or does not decrypt
            return 400, {"error": "bad_request"}
        known = self._identities.get(
            (claim.get("document_type", ""), normalise_number(claim.get("document_number", "")))
        )
        if known is None:
            result = "not_found"
        else:
            result = "match" if known == claim.get("name") else "no_match"
        return 200, {
            "request_id": request["request_id"],
            "result": result,
            "reference": "ctid-" + random_bytes(8).hex(),
        }
