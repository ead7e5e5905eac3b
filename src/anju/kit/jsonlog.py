"""Structured logging: one JSON object per line, PI redacted before anything is written.

Every record passes :mod:`anju.kit.redaction` in the formatter — message, extra fields and
traceback alike — so no handler configured here can write a clear-text ID number, phone number
or password, whoever logged it. The current request id (set by the HTTP middleware) is added
to every line logged while that request is being handled.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from anju.kit.redaction import redact_text, redact_value

request_id_var: ContextVar[str | None] = ContextVar("anju_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of a record, redacted."""
    return {
        key: redact_value(value, key)
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info:
        return redact_text(formatter.formatException(record.exc_info))
    if record.exc_text:
        return redact_text(record.exc_text)
    return None


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON with redacted content."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        exc = _exception_text(self, record)
        if exc is not None:
            entry["exception"] = exc
        if record.stack_info:
            entry["stack"] = redact_text(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal (``ANJU_LOG_JSON=false``), redacted the same way."""

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        parts = [time, record.levelname, record.name, redact_text(record.getMessage())]
        request_id = request_id_var.get()
        if request_id is not None:
            parts.append(f"request_id={request_id}")
        parts.extend(f"{k}={v}" for k, v in extra_fields(record).items())
        line = " ".join(parts)
        exc = _exception_text(self, record)
        return f"{line}\n{exc}" if exc else line


def configure_logging(
    level: str = "INFO", *, json_output: bool = True, stream: IO[str] | None = None
) -> logging.Handler:
    """Route every logger through one redacting handler on ``stream`` (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_output else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own loggers propagate to ours; its access log is replaced by anju.access
    # (which never writes query strings).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    # Alembic announces its dialect on every revision lookup (each /readyz): keep warnings only.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    return handler
