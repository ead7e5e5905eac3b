"""Face biometrics on the device protocol (docs/protocol.md, "Face biometrics").

A lock or kiosk checks liveness and compares faces itself; the platform never sends it an image
and never receives one. What travels:

* ``cmd`` ``bio.enrol`` / ``bio.load`` / ``bio.drop`` with args ``{"subject", "version"}`` (drop:
  ``{"subject"}``) — a pseudonymous subject id and a template version, nothing personal. The
  commands are stored by the platform's outbox like any other, so they must hold no secret.
* ``bio_get`` → ``bio_data``: the device fetches, in its session, what an offer entitles it to
  — the projection key of (subject, version) for an enrolment; key and protected template for a
  load. The platform answers only while a live ``bio.enrol`` / ``bio.load`` command of that
  device names exactly that subject and version; otherwise ``code: "bio_not_offered"``.
* ``bio_template`` (an enrolment's protected template) and ``bio_result`` (the outcome of a
  verification or a refused enrolment: result, liveness, reason codes) go up; the platform
  stores the first sealed by its PI vault and the second in its capture log — never in
  ``device_events`` — and answers each with ``bio_ack``. Devices keep both in their sealed,
  power-loss-safe outbox until that ack and send them again otherwise (same ``id``).
"""

from __future__ import annotations

import base64
from typing import Any

from anju.protocol.messages import (
    BIO_KEY_BYTES,
    BIO_MAX_VERSION,
    BIO_SUBJECT,
    BIO_TEMPLATE_BYTES,
)

ENROL_COMMAND = "bio.enrol"
LOAD_COMMAND = "bio.load"
DROP_COMMAND = "bio.drop"
#: Commands whose offer entitles the device to ``bio_data``.
OFFER_COMMANDS = (ENROL_COMMAND, LOAD_COMMAND)
COMMANDS = (ENROL_COMMAND, LOAD_COMMAND, DROP_COMMAND)

#: Codes of ``bio_data``, ``bio_ack`` and of the devices' command acks (stable).
CODES: dict[str, str] = {
    "bio_not_offered": "no live `bio.enrol` / `bio.load` command of this device names this subject "
    "and version (never sent, expired, cancelled, failed, or the template was revoked)",
    "bio_version_conflict": "the template is not the subject's next version (another enrolment "
    "came first)",
    "bio_malformed": "the template is not an anju face template (format byte)",
    "bio_bad_args": "the command's arguments are not a subject id and a version",
    "bio_no_camera": "the device has no camera: it cannot enrol or verify faces",
    "bio_store_full": "the device holds as many face templates as it can",
}

TEMPLATE_BYTES = BIO_TEMPLATE_BYTES
KEY_BYTES = BIO_KEY_BYTES


def command_args(subject: str, version: int | None) -> dict[str, Any]:
    """The arguments of a biometric command (``version`` None: ``bio.drop``)."""
    check_subject_ref(subject)
    if version is None:
        return {"subject": subject}
    if not 0 < version <= BIO_MAX_VERSION:
        raise ValueError("template version out of range")
    return {"subject": subject, "version": version}


def parse_command_args(name: str, args: Any) -> tuple[str, int | None] | None:
    """(subject, version) of a biometric command's arguments, None when they are not valid."""
    if not isinstance(args, dict):
        return None
    expected = {"subject"} if name == DROP_COMMAND else {"subject", "version"}
    subject, version = args.get("subject"), args.get("version")
    if set(args) != expected or not isinstance(subject, str) or not BIO_SUBJECT.fullmatch(subject):
        return None
    if name == DROP_COMMAND:
        return subject, None
    if isinstance(version, bool) or not isinstance(version, int):
        return None
    if not 0 < version <= BIO_MAX_VERSION:
        return None
    return subject, version


def check_subject_ref(subject: str) -> str:
    """A subject id that can travel to devices: 1–64 of ``A–Z a–z 0–9 _ -``."""
    if not BIO_SUBJECT.fullmatch(subject):
        raise ValueError("subject ids sent to devices are 1-64 of A-Z a-z 0-9 _ -")
    return subject


def b64(data: bytes) -> str:
    """Standard base64 with padding, as every binary field on the wire."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """The bytes of a base64 field that message validation already checked."""
    return base64.b64decode(text, validate=True)
