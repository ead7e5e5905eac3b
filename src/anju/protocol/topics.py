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
