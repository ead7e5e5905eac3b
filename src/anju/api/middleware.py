"""Pure ASGI middleware: request id + security headers + access log, body size limit, last-resort
error handler. Pure ASGI (no BaseHTTPMiddleware) so bodies stream and context variables flow.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anju.api.errors import error_response, internal_error_response
from anju.kit.jsonlog import request_id_var

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_SCOPE_KEY = "anju.request_id"
# A client-supplied id is kept only if it is short and plain (it goes into every log line).
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

DOCS_ASSETS_PREFIX = "/docs-assets"

# API responses are data, never pages: forbid everything a browser might do with them.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
    ("content-security-policy", API_CSP),
)
HSTS = "max-age=31536000; includeSubDomains"

access_logger = logging.getLogger("anju.access")


def request_id_of(scope: Scope) -> str | None:
    """The id the request context middleware gave this request."""
    value = scope.get(REQUEST_ID_SCOPE_KEY)
    return value if isinstance(value, str) else None


def _route_template(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


class RequestContextMiddleware:
    """Request id (X-Request-ID in and out), security headers and one access log line per request.

    The access log has the path without its query string: queries may carry PI.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = (
            supplied if supplied and _SAFE_REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
        )
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
                if "cache-control" not in headers:
                    # Responses may carry PI: no shared or browser caching. Docs assets are static.
                    cacheable = path.startswith(DOCS_ASSETS_PREFIX + "/")
                    headers["cache-control"] = "public, max-age=86400" if cacheable else "no-store"
                if scope.get("scheme") == "https":
                    headers.setdefault("strict-transport-security", HSTS)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            access_logger.info(
                "%s %s %d",
                scope.get("method", ""),
                path,
                status,
                extra={
                    "method": scope.get("method", ""),
                    "path": path,
                    "route": _route_template(scope),
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


class _BodyTooLarge(Exception):
    """Raised into the app from ``receive`` once the body passes the limit."""


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413 ``payload_too_large``.

    Checked twice: an announced Content-Length over the limit is refused before the app runs,
    and the bytes actually received are counted while streaming (chunked bodies, lying
    Content-Length). Whatever the app does once its ``receive`` fails, the client gets the 413.
    ``larger`` names exact paths with their own (larger) limit, e.g. firmware uploads.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        announced = Headers(scope=scope).get("content-length")
        if announced is not None and announced.isdigit() and int(announced) > limit:
            await self._refuse(scope, receive, send, limit)
            return

        received = 0
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded and not response_started:
                return  # the app's own error response is replaced by the 413 below
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not response_started:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(
            413,
            "payload_too_large",
            "请求体过大 / Request body too large.",
            {"max_bytes": limit},
            headers={"connection": "close"},
        )
        await response(scope, receive, send)


class UnexpectedErrorMiddleware:
    """Last resort: an exception nobody handled becomes a 500 ``internal_error``.

    The traceback is logged (redacted) with the request id; the client gets neither.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logger = logging.getLogger("anju.api")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            extra: dict[str, Any] = {"path": scope.get("path"), "route": _route_template(scope)}
            self.logger.error("unhandled error", exc_info=exc, extra=extra)
            if response_started:
                # Too late for an error body; uvicorn closes the connection. Re-raising would
                # only log the same traceback again, unredacted by anything but our formatter.
                return
            await internal_error_response(request_id_of(scope))(scope, receive, send)
