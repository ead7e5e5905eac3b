"""The plaintext messages carried in DATA frames: canonical JSON, validated per direction.

Canonical JSON here is RFC 8785 (JCS) restricted to values without floating point numbers:
UTF-8, object keys sorted, no insignificant whitespace, minimal string escapes. Integers must lie
within ±(2^53 - 1). Receivers accept only the canonical encoding, so every message has exactly
one byte representation.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any, Literal

from anju.protocol.errors import ProtocolError

MAX_MESSAGE_BYTES = 16384
MAX_DEPTH = 8
MAX_INT = (1 << 53) - 1
Sender = Literal["device", "platform"]

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME = re.compile(r"[a-z0-9_.]{1,64}")
_CODE = re.compile(r"[a-z0-9_]{1,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _bad(message: str) -> ProtocolError:
    return ProtocolError("message_malformed", f"message malformed: {message}")


def _check_value(value: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _bad(f"nested deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -MAX_INT <= value <= MAX_INT:
            raise _bad("integer outside ±(2^53 - 1)")
        return
    if isinstance(value, list):
        for item in value:
            _check_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _bad("object keys must be strings")
            _check_value(item, depth + 1)
        return
    raise _bad(f"values of type {type(value).__name__} are not allowed (no floats)")


def canonical_json(value: dict[str, Any]) -> bytes:
    """The canonical encoding of a JSON object (see module docstring)."""
    _check_value(value, 0)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _bad("duplicate object key")
    return result


def _no_constant(name: str) -> Any:
    raise _bad(f"{name} is not allowed")


def _no_float(text: str) -> Any:
    raise _bad("floating point numbers are not allowed")


# --- schemas ----------------------------------------------------------------------------------

Check = Callable[[Any], bool]


def _str(pattern: re.Pattern[str]) -> Check:
    return lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None


def _int(lo: int, hi: int) -> Check:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _opt(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _is_object(v: Any) -> bool:
    return isinstance(v, dict)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


_REPORTED_KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MAX_REPORTED_KEYS = 64
MAX_REPORTED_TEXT = 200


def _is_reported_value(v: Any) -> bool:
    if isinstance(v, str):
        return len(v) <= MAX_REPORTED_TEXT
    return v is None or isinstance(v, bool | int)


def _is_flat_report(v: Any) -> bool:
    """``state.extra``: a flat object of scalars, as the platform stores reported attributes."""
    return (
        isinstance(v, dict)
        and len(v) <= MAX_REPORTED_KEYS
        and all(
            isinstance(k, str) and _REPORTED_KEY.fullmatch(k) and _is_reported_value(x)
            for k, x in v.items()
        )
    )


#: At most this many event ids in one ``evt_ack``.
MAX_ACK_IDS = 256


def _id_list(v: Any) -> bool:
    """1 to MAX_ACK_IDS event ids."""
    return (
        isinstance(v, list)
        and 1 <= len(v) <= MAX_ACK_IDS
        and all(isinstance(x, str) and _ID.fullmatch(x) for x in v)
    )


# --- firmware transfer (anju.protocol.firmware builds on these) ---
#: ``fw_state`` states in the order a device goes through them; ``failed`` may end any step.
FW_STATES = ("downloading", "verified", "updating", "updated", "failed")
#: Image bytes per ``fw_chunk`` (the last chunk may be shorter) and chunks per image at most.
FW_CHUNK_BYTES = 8192
FW_MAX_CHUNKS = 512
_FW_CHUNK_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_FW_CHUNK_B64_MAX = 4 * -(-FW_CHUNK_BYTES // 3)


def _is_chunk_data(v: Any) -> bool:
    """Base64 (with padding) of 1 to FW_CHUNK_BYTES bytes."""
    return (
        isinstance(v, str)
        and 0 < len(v) <= _FW_CHUNK_B64_MAX
        and _FW_CHUNK_B64.fullmatch(v) is not None
    )


def _one_of(values: tuple[str, ...]) -> Check:
    return lambda v: isinstance(v, str) and v in values


# --- face biometrics (anju.protocol.biometrics builds on these) ---
#: A person as devices know them: the platform's pseudonymous subject id, never a name.
BIO_SUBJECT = re.compile(r"[A-Za-z0-9_-]{1,64}")
BIO_MAX_VERSION = (1 << 32) - 1
#: A protected face template (format byte + 1024 bits) and its projection key, in bytes.
BIO_TEMPLATE_BYTES = 129
BIO_KEY_BYTES = 32
BIO_MAX_REASONS = 8
BIO_KINDS = ("verify", "enrol")
BIO_RESULTS = ("match", "no_match", "refused")
BIO_LIVENESS = ("passed", "failed", "not_checked")


def _b64_of(size: int) -> Check:
    """Standard base64 (with padding) of exactly ``size`` bytes."""

    def check(v: Any) -> bool:
        if not isinstance(v, str) or len(v) != 4 * -(-size // 3):
            return False
        try:
            return len(base64.b64decode(v, validate=True)) == size
        except (binascii.Error, ValueError):
            return False

    return check


def _code_list(v: Any) -> bool:
    """0 to BIO_MAX_REASONS reason codes."""
    return (
        isinstance(v, list)
        and len(v) <= BIO_MAX_REASONS
        and all(isinstance(x, str) and _CODE.fullmatch(x) for x in v)
    )


_TIME_MS = _int(0, MAX_INT)
_TEXT64 = _str(re.compile(r"[\x20-\x7e]{1,64}"))
_CHUNK_INDEX = _int(0, FW_MAX_CHUNKS - 1)
_SUBJECT = _str(BIO_SUBJECT)
_BIO_VERSION = _int(1, BIO_MAX_VERSION)

#: type -> (required fields, optional fields), each field -> check.
SCHEMAS: dict[Sender, dict[str, tuple[dict[str, Check], dict[str, Check]]]] = {
    "device": {
        "confirm": ({"th": _str(_HEX64)}, {}),
        "evt": (
            {"id": _str(_ID), "at": _TIME_MS, "kind": _str(_NAME), "data": _is_object},
            {},
        ),
        "state": (
            {
                "at": _TIME_MS,
                "battery": _opt(_int(0, 100)),
                "firmware": _TEXT64,
                "signal": _opt(_int(-200, 0)),
            },
            {"extra": _is_flat_report},
        ),
        "ack": ({"id": _str(_ID), "ok": _is_bool, "code": _opt(_str(_CODE))}, {}),
        "fw_get": ({"pkg": _str(_ID), "i": _CHUNK_INDEX}, {}),
        "fw_state": (
            {"pkg": _str(_ID), "state": _one_of(FW_STATES), "code": _opt(_str(_CODE))},
            {},
        ),
        "bio_get": ({"subject": _SUBJECT, "version": _BIO_VERSION}, {}),
        "bio_result": (
            {
                "id": _str(_ID),
                "at": _TIME_MS,
                "kind": _one_of(BIO_KINDS),
                "subject": _opt(_SUBJECT),
                "version": _opt(_BIO_VERSION),
                "result": _one_of(BIO_RESULTS),
                "liveness": _one_of(BIO_LIVENESS),
                "reasons": _code_list,
            },
            {},
        ),
        "bio_template": (
            {
                "id": _str(_ID),
                "at": _TIME_MS,
                "subject": _SUBJECT,
                "version": _BIO_VERSION,
                "tpl": _b64_of(BIO_TEMPLATE_BYTES),
            },
            {},
        ),
    },
    "platform": {
        "cmd": (
            {"id": _str(_ID), "name": _str(_NAME), "args": _is_object, "exp": _TIME_MS},
            {},
        ),
        "rekey": ({}, {}),
        "evt_ack": ({"ids": _id_list}, {}),
        "fw_chunk": (
            {
                "pkg": _str(_ID),
                "i": _CHUNK_INDEX,
                "data": _opt(_is_chunk_data),
                "code": _opt(_str(_CODE)),
            },
            {},
        ),
        "bio_data": (
            {
                "subject": _SUBJECT,
                "version": _BIO_VERSION,
                "key": _opt(_b64_of(BIO_KEY_BYTES)),
                "tpl": _opt(_b64_of(BIO_TEMPLATE_BYTES)),
                "code": _opt(_str(_CODE)),
            },
            {},
        ),
        "bio_ack": ({"id": _str(_ID), "ok": _is_bool, "code": _opt(_str(_CODE))}, {}),
    },
}


def _check_bio_result(message: dict[str, Any]) -> None:
    """A verification names the person exactly when it matched; an enrolment result is a
    refusal of that person's enrolment (a success is the ``bio_template`` itself)."""
    subject, result = message["subject"], message["result"]
    if (subject is None) != (message["version"] is None):
        raise _bad("bio_result: subject and version together")
    if message["kind"] == "verify" and (result == "match") != (subject is not None):
        raise _bad("bio_result: a verification names the subject exactly when it matched")
    if message["kind"] == "enrol" and (result != "refused" or subject is None):
        raise _bad("bio_result: an enrolment result is a refusal naming the subject")


def validate_message(message: Any, sender: Sender) -> dict[str, Any]:
    """Check a message object against the schema of its type for this sender; return it."""
    if not isinstance(message, dict):
        raise _bad("a message is a JSON object")
    kind = message.get("t")
    schemas = SCHEMAS[sender]
    if not isinstance(kind, str) or kind not in schemas:
        raise ProtocolError("unknown_message_type", f"message type not accepted from the {sender}")
    required, optional = schemas[kind]
    for name, check in required.items():
        if name not in message:
            raise _bad(f"{kind}: missing field {name!r}")
        if not check(message[name]):
            raise _bad(f"{kind}: field {name!r} has the wrong type or value")
    for name in message.keys() - required.keys() - {"t"}:
        optional_check = optional.get(name)
        if optional_check is None:
            raise _bad(f"{kind}: unknown field {name!r}")
        if not optional_check(message[name]):
            raise _bad(f"{kind}: field {name!r} has the wrong type or value")
    if kind in ("ack", "bio_ack") and message["ok"] == (message["code"] is not None):
        raise _bad(f"{kind}: code must be null when ok and set when not ok")
    if kind == "fw_state" and (message["state"] == "failed") == (message["code"] is None):
        raise _bad("fw_state: code must be set when failed and null otherwise")
    if kind == "fw_chunk" and (message["data"] is None) == (message["code"] is None):
        raise _bad("fw_chunk: exactly one of data and code")
    if kind == "bio_data" and (message["key"] is None) == (message["code"] is None):
        raise _bad("bio_data: exactly one of key and code")
    if kind == "bio_data" and message["key"] is None and message["tpl"] is not None:
        raise _bad("bio_data: no template without its key")
    if kind == "bio_result":
        _check_bio_result(message)
    _check_value(message, 0)
    return message


def encode_message(message: dict[str, Any], sender: Sender) -> bytes:
    """Validate and encode a message as canonical JSON (at most 16 KiB)."""
    raw = canonical_json(validate_message(message, sender))
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message_too_large", f"message longer than {MAX_MESSAGE_BYTES} bytes")
    return raw


def decode_message(raw: bytes, sender: Sender) -> dict[str, Any]:
    """Parse and validate a received message; it must be in canonical form."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message_too_large", f"message longer than {MAX_MESSAGE_BYTES} bytes")
    try:
        text = raw.decode("utf-8", errors="strict")
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_no_float,
        )
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise _bad("not UTF-8 JSON") from None
    message = validate_message(value, sender)
    if canonical_json(message) != raw:
        raise _bad("not in canonical form")
    return message
