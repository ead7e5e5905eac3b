"""The one error model: every error response is ``{"error": {"code", "message", "details"}}``.

Codes are stable and documented in docs/api.md. Nothing a client sent is echoed back (it may
be personal information), and nothing internal (exception text, SQL, paths) leaves the server:
a 5xx carries only its code, a generic message and the request id to quote to an operator.
"""

from __future__ import annotations

import email.message
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from anju.errors import AnjuError
from anju.kit.jsonlog import request_id_var

logger = logging.getLogger("anju.api.errors")

INTERNAL_MESSAGE = (
    "服务器内部错误，请将请求编号告知管理员 / Internal error; quote the request id to an operator."
)

# Fallback codes for HTTP errors raised by the framework itself (routing, body parsing).
_STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求无效 / Bad request."),
    401: ("unauthenticated", "需要登录 / Authentication required."),
    403: ("forbidden", "无权访问 / Forbidden."),
    404: ("not_found", "资源不存在 / Not found."),
    405: ("method_not_allowed", "不支持该请求方法 / Method not allowed."),
    406: ("not_acceptable", "无法提供所请求的格式 / Not acceptable."),
    413: ("payload_too_large", "请求体过大 / Request body too large."),
    415: ("unsupported_media_type", "不支持的内容类型 / Unsupported media type."),
    429: ("too_many_requests", "请求过于频繁 / Too many requests."),
}
_ACCEPTED_BODY_TYPES = (
    "application/json",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
)
# Pydantic messages of these types come from validator code and may quote the input.
_FREE_TEXT_ERROR_TYPES = frozenset({"value_error", "assertion_error"})


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error response in the one error model."""
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def internal_error_response(request_id: str | None) -> JSONResponse:
    """The 500 sent for anything unexpected: no exception text, only the request id."""
    details = {"request_id": request_id} if request_id else {}
    return error_response(500, "internal_error", INTERNAL_MESSAGE, details)


def _field_path(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_details(errors: Sequence[Any]) -> dict[str, Any]:
    """Field paths, error types and messages — never the submitted values."""
    fields = []
    for err in errors:
        kind = str(err.get("type", "invalid"))
        message = (
            "值无效 / invalid value" if kind in _FREE_TEXT_ERROR_TYPES else str(err.get("msg"))
        )
        fields.append({"path": _field_path(err.get("loc", ())), "type": kind, "message": message})
    return {"fields": fields}


def _body_media_type(request: Request) -> str | None:
    raw = request.headers.get("content-type")
    if not raw:
        return None
    parsed = email.message.Message()
    parsed["content-type"] = raw
    return parsed.get_content_type()


def _is_json_type(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _wrong_media_type(request: Request, errors: Sequence[Any]) -> bool:
    """A body was sent with a type the endpoint cannot read (so it failed validation)."""
    body_errors = [e for e in errors if tuple(e.get("loc", ()))[:1] == ("body",)]
    if not body_errors:
        return False
    media_type = _body_media_type(request)
    if media_type is None:
        # No Content-Type: an empty body shows as "missing"; anything else was unreadable bytes.
        return any(e.get("type") != "missing" for e in body_errors)
    return not (_is_json_type(media_type) or media_type in _ACCEPTED_BODY_TYPES)


async def _anju_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AnjuError)
    if exc.status >= 500:
        logger.error(
            "domain error %s on %s %s",
            exc.code,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        request_id = request_id_var.get()
        return error_response(
            exc.status, exc.code, INTERNAL_MESSAGE, {"request_id": request_id} if request_id else {}
        )
    return error_response(exc.status, exc.code, exc.message, exc.details)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(
            400, "malformed_json", "请求体不是有效的 JSON / Request body is not valid JSON."
        )
    if _wrong_media_type(request, errors):
        return error_response(
            415,
            "unsupported_media_type",
            "请求体必须是 JSON（Content-Type: application/json）/ "
            "Request body must be JSON (Content-Type: application/json).",
        )
    return error_response(
        422, "invalid_input", "输入无效 / Invalid input.", validation_details(errors)
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, message = _STATUS_CODES.get(exc.status_code, ("http_error", "请求失败 / Request failed."))
    if exc.status_code >= 500:
        return internal_error_response(request_id_var.get())
    return error_response(exc.status_code, code, message, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every known failure into the one error model."""
    app.add_exception_handler(AnjuError, _anju_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
