"""The face messages of the device protocol: exact shapes, the rules between fields, and sizes
that agree with the face engine's templates (docs/protocol.md, "Face biometrics")."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from anju.face.template import BITS, TEMPLATE_KEY_BYTES, ProtectedTemplate
from anju.protocol.biometrics import (
    CODES,
    DROP_COMMAND,
    ENROL_COMMAND,
    KEY_BYTES,
    TEMPLATE_BYTES,
    command_args,
    parse_command_args,
)
from anju.protocol.errors import ProtocolError
from anju.protocol.messages import decode_message, encode_message

pytestmark = pytest.mark.req("L9", "L16", "F3")

TPL = base64.b64encode(bytes(ProtectedTemplate(bytes(128)))).decode()
KEY = base64.b64encode(bytes(32)).decode()
RESULT: dict[str, Any] = {
    "t": "bio_result",
    "id": "r1",
    "at": 1,
    "kind": "verify",
    "subject": "guest-1",
    "version": 1,
    "result": "match",
    "liveness": "passed",
    "reasons": [],
}
TEMPLATE = {
    "t": "bio_template",
    "id": "t1",
    "at": 1,
    "subject": "guest-1",
    "version": 1,
    "tpl": TPL,
}
DATA = {"t": "bio_data", "subject": "guest-1", "version": 1, "key": KEY, "tpl": None, "code": None}


def test_sizes_agree_with_the_face_engine() -> None:
    assert (TEMPLATE_BYTES, KEY_BYTES) == (1 + BITS // 8, TEMPLATE_KEY_BYTES)


@pytest.mark.parametrize(
    ("message", "sender"),
    [
        (RESULT, "device"),
        ({**RESULT, "subject": None, "version": None, "result": "no_match"}, "device"),
        (
            {
                **RESULT,
                "kind": "enrol",
                "result": "refused",
                "liveness": "failed",
                "reasons": ["liveness_repeated_frames"],
            },
            "device",
        ),
        (TEMPLATE, "device"),
        ({"t": "bio_get", "subject": "guest-1", "version": 4294967295}, "device"),
        (DATA, "platform"),
        ({**DATA, "tpl": TPL}, "platform"),
        ({**DATA, "key": None, "code": "bio_not_offered"}, "platform"),
        ({"t": "bio_ack", "id": "t1", "ok": False, "code": "bio_version_conflict"}, "platform"),
    ],
)
def test_valid_face_messages_round_trip(message: dict[str, Any], sender: Any) -> None:
    assert decode_message(encode_message(message, sender), sender) == message


@pytest.mark.parametrize(
    ("message", "sender"),
    [
        ({**TEMPLATE, "tpl": TPL[:-4]}, "device"),  # a template of the wrong length
        ({**TEMPLATE, "tpl": TPL[:-1] + "*"}, "device"),  # not base64
        ({**TEMPLATE, "subject": "guest 1"}, "device"),  # not a subject id
        ({**TEMPLATE, "version": 0}, "device"),
        ({**TEMPLATE, "image": "AAAA"}, "device"),  # no room for anything else
        ({**RESULT, "subject": None}, "device"),  # subject and version together
        ({**RESULT, "result": "no_match"}, "device"),  # a non-match names nobody
        ({**RESULT, "kind": "enrol"}, "device"),  # an enrolment result is a refusal
        ({**RESULT, "reasons": ["x"] * 9}, "device"),
        ({**RESULT, "liveness": "maybe"}, "device"),
        ({**DATA, "code": "bio_not_offered"}, "platform"),  # key and code
        ({**DATA, "key": None, "tpl": TPL, "code": "bio_not_offered"}, "platform"),
        ({**DATA, "key": KEY[:-4]}, "platform"),
        ({"t": "bio_ack", "id": "t1", "ok": True, "code": "bio_malformed"}, "platform"),
        (DATA, "device"),  # each direction its own types
        (TEMPLATE, "platform"),
    ],
)
def test_malformed_face_messages_are_refused(message: dict[str, Any], sender: Any) -> None:
    with pytest.raises(ProtocolError) as refused:
        encode_message(message, sender)
    assert refused.value.code in ("message_malformed", "unknown_message_type")


def test_command_arguments_hold_a_subject_and_a_version_only() -> None:
    assert command_args("guest-1", 3) == {"subject": "guest-1", "version": 3}
    assert parse_command_args(ENROL_COMMAND, {"subject": "guest-1", "version": 3}) == ("guest-1", 3)
    assert parse_command_args(DROP_COMMAND, {"subject": "guest-1"}) == ("guest-1", None)
    for bad in (
        {"subject": "guest-1"},
        {"subject": "guest-1", "version": True},
        {"subject": "guest-1", "version": 0},
        {"subject": "a/b", "version": 1},
        {"subject": "guest-1", "version": 1, "name": "Zhang San"},
        ["guest-1", 1],
    ):
        assert parse_command_args(ENROL_COMMAND, bad) is None, bad
    assert parse_command_args(DROP_COMMAND, {"subject": "guest-1", "version": 1}) is None
    with pytest.raises(ValueError, match="subject"):
        command_args("张三", 1)


def test_every_face_code_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    for code, meaning in CODES.items():
        assert f"| `{code}` | {meaning} |" in doc, code
