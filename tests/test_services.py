"""The real services the suite relies on are present (in CI their absence is a failure)."""

from __future__ import annotations

import socket

import pytest

from tests.support.services import MOSQUITTO_HOST, MOSQUITTO_PORT, require_service, tcp_reachable


def _mqtt_connect_ack(host: str, port: int) -> bytes:
    """Send a minimal MQTT 3.1.1 CONNECT and return the broker's CONNACK bytes."""
    client_id = b"anju-probe"
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"
    payload = len(client_id).to_bytes(2, "big") + client_id
    packet = bytes([0x10, len(variable) + len(payload)]) + variable + payload
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall(packet)
        return sock.recv(4)


@pytest.mark.req("R16")
def test_mosquitto_accepts_an_mqtt_connection() -> None:
    require_service("Mosquitto", tcp_reachable(MOSQUITTO_HOST, MOSQUITTO_PORT))
    assert _mqtt_connect_ack(MOSQUITTO_HOST, MOSQUITTO_PORT) == b"\x20\x02\x00\x00"


@pytest.mark.req("R16")
async def test_migrations_reach_head_on_both_backends(platform) -> None:  # type: ignore[no-untyped-def]
    from anju.migrations import current_revisions

    assert await current_revisions(platform.db)
