"""The demo's guests: generated, or read from ``--guests FILE`` (checked like any input)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from anju.errors import InvalidInput
from anju.people.application import Application
from anju.people.validation.documents import DocumentType, validate_document_number
from anju.people.validation.names import validate_person_name, validate_phone
from anju.people.validation.resident_id import check_character

MAX_GUESTS = 20
MAX_FILE_BYTES = 64 * 1024
#: Names a hotel meets: compound surnames, the middle dot, a rare character (Extension B).
DEMO_NAMES = ("欧阳娜娜", "买买提·艾力", "𠮷田優子", "司马相如", "张三")


@dataclass(frozen=True)
class Guest:
    name: str
    id_number: str
    phone: str

    def application(self) -> Application:
        return Application(
            kind="individual",
            document_type=DocumentType.RESIDENT_ID.value,
            document_number=self.id_number,
            name=self.name,
            phone=self.phone,
        )


def generated_guests(count: int, seed: int = 2026) -> list[Guest]:
    """``count`` guests with valid resident ID numbers (GB 11643 check characters)."""
    rng = random.Random(seed)  # noqa: S311 - made-up guests, reproducible on purpose
    guests = []
    for i in range(count):
        born = f"{rng.randint(1950, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        first17 = f"110105{born}{100 + i:03d}"
        guests.append(
            Guest(
                DEMO_NAMES[i % len(DEMO_NAMES)],
                first17 + check_character(first17),
                f"139{rng.randint(10_000_000, 99_999_999)}",
            )
        )
    return guests


def load_guests(path: Path, today: date) -> list[Guest]:
    """A JSON list of ``{"name", "id_number", "phone"}``; InvalidInput naming the bad entry."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(
            f"无法读取住客文件 / cannot read the guests file ({exc.strerror})"
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidInput(f"住客文件过大 / the guests file is larger than {MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("住客文件须为 UTF-8 JSON / the guests file must be UTF-8 JSON") from None
    if not isinstance(data, list) or not 2 <= len(data) <= MAX_GUESTS:
        raise InvalidInput(
            f"住客文件须为 2–{MAX_GUESTS} 项的列表 / the guests file must be a list of "
            f"2–{MAX_GUESTS} guests (the journey needs two)"
        )
    guests = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or set(item) != {"name", "id_number", "phone"}:
            raise InvalidInput(
                f"第 {index + 1} 项须只含 name、id_number、phone / guest {index + 1} must have "
                "exactly name, id_number and phone",
                details={"index": index},
            )
        if not all(isinstance(v, str) for v in item.values()):
            raise InvalidInput(
                f"guest {index + 1}: values must be strings", details={"index": index}
            )
        try:
            guests.append(
                Guest(
                    validate_person_name(item["name"]),
                    validate_document_number(DocumentType.RESIDENT_ID, item["id_number"], today),
                    validate_phone(item["phone"]),
                )
            )
        except InvalidInput as exc:
            raise InvalidInput(
                f"第 {index + 1} 项 / guest {index + 1}: {exc.message}",
                details={"index": index, "code": exc.code},
            ) from None
    if len({g.id_number for g in guests}) != len(guests):
        raise InvalidInput("住客证件号码重复 / two guests share an ID number")
    return guests
