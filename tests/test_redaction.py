"""PI never reaches a log line: masking in free text, redaction by key, JSON log formatting."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from anju.kit.jsonlog import JsonFormatter, TextFormatter, configure_logging, request_id_var
from anju.kit.redaction import REDACTED, is_sensitive_key, redact_mapping, redact_text

ID_NUMBER = "11010519491231002X"
ID_NUMBER_DIGITS = "110105199001011234"
PHONE = "13812345678"
CARD = "6222021234567890123"
PASSWORD = "correct horse battery staple"


@pytest.mark.req("L11")
def test_masked_forms_match_the_display_convention() -> None:
    assert redact_text(ID_NUMBER) == "110105********002X"
    assert redact_text(PHONE) == "138****5678"
    assert redact_text(CARD) == "6222***********0123"


@pytest.mark.req("L11", "R16")
@pytest.mark.parametrize(
    ("text", "secret", "masked"),
    [
        (f"guest {ID_NUMBER} checked in", ID_NUMBER, "110105********002X"),
        (f"guest {ID_NUMBER.lower()} checked in", ID_NUMBER.lower(), "110105********002X"),
        (f"身份证号{ID_NUMBER_DIGITS}已核验", ID_NUMBER_DIGITS, "110105********1234"),
        (f"call {PHONE} now", PHONE, "138****5678"),
        ("call +86 138-1234-5678 now", "1234", "138****5678"),
        (f"tel{PHONE}", PHONE, "tel138****5678"),
        (f"card {CARD}", CARD, "6222***********0123"),
        ("card 6222 0212 3456 7890", "0212 3456", "6222********7890"),
        ("mail zhang.san@example.com", "zhang.san", "z***@example.com"),
        ("login password=hunter2, ok", "hunter2", f"password={REDACTED}"),
        ('{"totp": "492039", "x": 1}', "492039", f'"totp": {REDACTED}'),
        ("Authorization: Bearer abc.def.ghi", "abc.def", f"Authorization: {REDACTED}"),
        ("GET /x?session_token=s3cr3t&y=1", "s3cr3t", f"session_token={REDACTED}&y=1"),
    ],
)
def test_free_text_is_scrubbed(text: str, secret: str, masked: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert masked in out


@pytest.mark.req("L11")
@pytest.mark.parametrize(
    "text",
    [
        "request 550e8400-e29b-41d4-a716-446655440000 done",
        "at 2026-01-01T12:00:00.123+00:00 in 12.5 ms",
        "digest 3f2a9c0d8e7b6a5f4e3d2c1b0a998877",
        "tree size 1000000 leaf 42",
    ],
)
def test_ordinary_log_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.req("L11", "R16")
@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("password", True),
        ("new_password", True),
        ("client_secret", True),
        ("accessToken", True),
        ("totp_code", True),
        ("id_number", True),
        ("idNumber", True),
        ("phone", True),
        ("mobile_phone", True),
        ("name", True),
        ("full_name", True),
        ("address", True),
        ("api_key", True),
        ("route", False),
        ("status", False),
        ("duration_ms", False),
        ("hostname", False),
        ("key_version", False),
        ("paid_notes", False),
    ],
)
def test_sensitive_keys(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


@pytest.mark.req("L11")
def test_mappings_are_redacted_recursively() -> None:
    out = redact_mapping(
        {
            "name": "张三",
            "guest": {"phone": PHONE, "room": "1203", "note": f"id {ID_NUMBER}"},
            "numbers": [int(PHONE)],
            "blob": b"\x00\x01",
        }
    )
    dumped = json.dumps(out, ensure_ascii=False)
    for secret in ("张三", PHONE, ID_NUMBER):
        assert secret not in dumped
    assert out["name"] == REDACTED
    assert out["guest"]["room"] == "1203"
    assert out["numbers"] == ["138****5678"]
    assert out["blob"] == "<2 bytes>"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Logs of the test, formatted by anju's JSON formatter, captured in memory."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("anju.test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)


@pytest.mark.req("L11", "L17", "R16")
def test_json_log_line_contains_no_pi(log_lines: io.StringIO) -> None:
    token = request_id_var.set("req-123")
    try:
        logging.getLogger("anju.test").info(
            "registered guest %s with phone %s",
            ID_NUMBER,
            PHONE,
            extra={"password": PASSWORD, "id_number": ID_NUMBER, "room": "1203", "count": 2},
        )
    finally:
        request_id_var.reset(token)
    line = log_lines.getvalue()
    assert line.count("\n") == 1
    entry = json.loads(line)
    for secret in (ID_NUMBER, PHONE, PASSWORD, "horse"):
        assert secret not in line
    assert entry["message"] == "registered guest 110105********002X with phone 138****5678"
    assert entry["password"] == REDACTED
    assert entry["id_number"] == REDACTED
    assert entry["room"] == "1203"
    assert entry["count"] == 2
    assert entry["request_id"] == "req-123"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "anju.test"
    assert entry["time"].endswith("+00:00")


@pytest.mark.req("L11", "L17")
def test_tracebacks_are_redacted(log_lines: io.StringIO) -> None:
    try:
        raise ValueError(f"lookup failed for {ID_NUMBER} / {PHONE}")
    except ValueError:
        logging.getLogger("anju.test").exception("failed")
    entry = json.loads(log_lines.getvalue())
    assert "ValueError" in entry["exception"]
    assert "110105********002X" in entry["exception"]
    assert ID_NUMBER not in log_lines.getvalue()
    assert PHONE not in log_lines.getvalue()


@pytest.mark.req("L11")
def test_text_formatter_redacts_too() -> None:
    record = logging.LogRecord("anju.test", logging.INFO, __file__, 1, "phone %s", (PHONE,), None)
    record.password = PASSWORD
    line = TextFormatter().format(record)
    assert PHONE not in line
    assert PASSWORD not in line
    assert "138****5678" in line


@pytest.mark.req("L17")
def test_configure_logging_routes_everything_through_one_redacting_handler() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    alembic_level = logging.getLogger("alembic").level
    buffer = io.StringIO()
    try:
        configure_logging("INFO", json_output=True, stream=buffer)
        logging.getLogger("some.library").warning("user %s", PHONE)
        logging.getLogger("uvicorn.error").info("started")
        logging.getLogger("uvicorn.access").info("GET /x?phone=%s", PHONE)  # disabled
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        logging.getLogger("uvicorn.access").disabled = False
        logging.getLogger("alembic").setLevel(alembic_level)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [e["logger"] for e in lines] == ["some.library", "uvicorn.error"]
    assert PHONE not in buffer.getvalue()
