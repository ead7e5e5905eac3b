"""Who may connect to the MQTT broker and which topics each may use — one place for both brokers.

Devices: username = client id = device id; password = ``mqtt_password(root key, device id)``
(the secure element computes the same, docs/protocol.md). Only devices whose status admits a
handshake (registered, active) get broker access. The platform's gateway client logs in as
``anju-gateway`` with the keyring secret "mqtt-gateway".
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.devices.lifecycle import HANDSHAKE_STATUSES, HEX_ID, root_key_aad
from anju.devices.models import Device
from anju.errors import AnjuError
from anju.kit.keyring import KeyProvider
from anju.protocol.topics import (
    PLATFORM_SUBSCRIPTION,
    down_topic,
    parse_up_topic,
    up_topic,
)

GATEWAY_USERNAME = "anju-gateway"
GATEWAY_KEY_NAME = "mqtt-gateway"  # the keyring secret holding its password
#: Client ids of gateway processes: ``anju-gateway-{instance as 4 hex}``.
GATEWAY_CLIENT_PREFIX = "anju-gateway-"


def gateway_password(keys: KeyProvider) -> str:
    """The gateway client's broker password (from the keyring, never stored elsewhere)."""
    return keys.secret(GATEWAY_KEY_NAME).hex()


def gateway_client_id(instance: int) -> str:
    """The MQTT client id of gateway ``instance``."""
    return f"{GATEWAY_CLIENT_PREFIX}{instance:04x}"


def device_password_from_row(keys: KeyProvider, device: Device) -> str | None:
    """A device's broker password, or None when the device may not use the broker."""
    from anju.protocol.keys import mqtt_password

    if device.status not in HANDSHAKE_STATUSES or device.root_key_wrapped is None:
        return None
    try:
        root_key = keys.unwrap(device.root_key_wrapped, root_key_aad(device.id))
    except AnjuError:
        return None
    return mqtt_password(root_key, device.id)


async def device_password(keys: KeyProvider, session: AsyncSession, device_id: str) -> str | None:
    """The broker password of ``device_id`` if it may connect now, else None."""
    if not HEX_ID.match(device_id):
        return None
    device = await session.get(Device, device_id)
    return None if device is None else device_password_from_row(keys, device)


async def broker_users(keys: KeyProvider, session: AsyncSession) -> list[tuple[str, str]]:
    """(username, password) of everyone who may connect: the gateway, then eligible devices."""
    users = [(GATEWAY_USERNAME, gateway_password(keys))]
    query = select(Device).where(Device.status.in_(sorted(HANDSHAKE_STATUSES))).order_by(Device.id)
    for device in (await session.execute(query)).scalars():
        password = device_password_from_row(keys, device)
        if password is not None:
            users.append((device.id, password))
    return users


def passwords_equal(expected: str, presented: str | bytes | None) -> bool:
    """Constant-time comparison of a presented MQTT password."""
    if presented is None:
        return False
    given = presented.encode() if isinstance(presented, str) else bytes(presented)
    return hmac.compare_digest(expected.encode(), given)


# --- ACL ---------------------------------------------------------------------------------------
def _is_device(username: str) -> bool:
    return HEX_ID.match(username) is not None


def may_publish(username: str, topic: str) -> bool:
    """Devices: their own ``…/up`` and ``…/up/{instance}``; the gateway: any ``…/down``."""
    if username == GATEWAY_USERNAME:
        parts = topic.split("/")
        return (
            len(parts) == 5
            and topic.startswith("anju/v1/dev/")
            and parts[4] == "down"
            and HEX_ID.match(parts[3]) is not None
        )
    if not _is_device(username):
        return False
    try:
        device_id, _ = parse_up_topic(topic)
    except AnjuError:
        return False
    return device_id == username


def may_subscribe(username: str, topic_filter: str) -> bool:
    """Devices: exactly their ``…/down``; the gateway: the uplink filters it uses."""
    if username == GATEWAY_USERNAME:
        bare = _strip_share(topic_filter)
        return bare == PLATFORM_SUBSCRIPTION or (
            bare.startswith(PLATFORM_SUBSCRIPTION + "/") and _instance_filter_ok(bare)
        )
    return _is_device(username) and topic_filter == down_topic(username)


def may_receive(username: str, topic: str) -> bool:
    """Whether a message on ``topic`` may be delivered to ``username`` (defence in depth)."""
    if username == GATEWAY_USERNAME:
        try:
            parse_up_topic(topic)
        except AnjuError:
            return False
        return True
    return _is_device(username) and topic == down_topic(username)


def _strip_share(topic_filter: str) -> str:
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        return parts[2] if len(parts) == 3 else ""
    return topic_filter


def _instance_filter_ok(topic_filter: str) -> bool:
    rest = topic_filter[len(PLATFORM_SUBSCRIPTION) + 1 :]
    return rest in ("#", "+") or (len(rest) == 4 and all(c in "0123456789abcdef" for c in rest))


def device_topics(device_id: str) -> Sequence[str]:
    """The topics a device uses (publish base, subscribe) — for documentation and tests."""
    return (up_topic(device_id), down_topic(device_id))
