"""MQTT topics of the device protocol: ``anju/v1/dev/{device_id}/up`` and ``…/down``."""

from __future__ import annotations

import re
from typing import Literal

from anju.protocol.errors import ProtocolError

PREFIX = "anju/v1/dev/"
#: What the platform subscribes to (every device's uplink).
PLATFORM_SUBSCRIPTION = "anju/v1/dev/+/up"
#: The same as an MQTT 5 shared subscription, so several gateway processes split the load.
PLATFORM_SHARED_SUBSCRIPTION = "$share/anju/anju/v1/dev/+/up"

Direction = Literal["up", "down"]
_ID = re.compile(r"[0-9a-f]{32}")


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` if it is 32 lowercase hex characters; ProtocolError otherwise."""
    if not isinstance(device_id, str) or not _ID.fullmatch(device_id):
        raise ProtocolError("topic_invalid", "device id must be 32 lowercase hex characters")
    return device_id


def up_topic(device_id: str) -> str:
    """The topic a device publishes to."""
    return f"{PREFIX}{check_device_id(device_id)}/up"


def down_topic(device_id: str) -> str:
    """The topic a device subscribes to (the platform publishes there)."""
    return f"{PREFIX}{check_device_id(device_id)}/down"


def parse_topic(topic: str) -> tuple[str, Direction]:
    """(device id, "up" | "down") of a concrete device topic; ProtocolError("topic_invalid")."""
    if not isinstance(topic, str) or not topic.startswith(PREFIX):
        raise ProtocolError("topic_invalid", "not an anju device topic")
    parts = topic[len(PREFIX) :].split("/")
    if len(parts) != 2 or parts[1] not in ("up", "down"):
        raise ProtocolError("topic_invalid", "device topic must end in /up or /down")
    device_id = check_device_id(parts[0])  # also refuses "+" and "#" wildcards
    return device_id, "up" if parts[1] == "up" else "down"


# --- gateway instances (docs/protocol.md §topics, docs/gateway.md) ------------------------------
#: A session id starts with the 2-byte instance number of the gateway process that holds it.
INSTANCE_BYTES = 2
MAX_INSTANCE = 0xFFFF
#: What every gateway process reads (HELLOs on ``…/up`` and DATA on ``…/up/{instance}``).
GATEWAY_READ_FILTER = "anju/v1/dev/+/up/#"
#: What the gateway writes (WELCOME and DATA to devices).
GATEWAY_WRITE_FILTER = "anju/v1/dev/+/down"
_INSTANCE_HEX = re.compile(r"[0-9a-f]{4}")


def check_instance(instance: int) -> int:
    """Return ``instance`` if it is a gateway instance number 0..65535; ValueError otherwise."""
    if isinstance(instance, bool) or not isinstance(instance, int):
        raise ValueError("gateway instance must be an integer")
    if not 0 <= instance <= MAX_INSTANCE:
        raise ValueError("gateway instance must be 0..65535")
    return instance


def instance_of_session(session_id: bytes) -> int:
    """The gateway instance a session id names (its first two bytes, big-endian)."""
    if len(session_id) < INSTANCE_BYTES:
        raise ValueError("session id too short")
    return int.from_bytes(session_id[:INSTANCE_BYTES], "big")


def session_up_topic(device_id: str, instance: int) -> str:
    """Where a device publishes the DATA frames of a session held by ``instance``."""
    return f"{up_topic(device_id)}/{check_instance(instance):04x}"


def instance_subscription(instance: int) -> str:
    """What gateway ``instance`` subscribes to for the DATA frames of its sessions."""
    return f"{PLATFORM_SUBSCRIPTION}/{check_instance(instance):04x}"


def parse_up_topic(topic: str) -> tuple[str, int | None]:
    """(device id, instance or None) of ``…/{id}/up`` or ``…/{id}/up/{4 hex}``; topic_invalid."""
    if not isinstance(topic, str) or not topic.startswith(PREFIX):
        raise ProtocolError("topic_invalid", "not an anju device topic")
    parts = topic[len(PREFIX) :].split("/")
    if len(parts) not in (2, 3) or parts[1] != "up":
        raise ProtocolError("topic_invalid", "not a device uplink topic")
    device_id = check_device_id(parts[0])
    if len(parts) == 2:
        return device_id, None
    if not _INSTANCE_HEX.fullmatch(parts[2]):
        raise ProtocolError("topic_invalid", "instance must be 4 lowercase hex characters")
    return device_id, int(parts[2], 16)
