"""Broker credentials and topics: the SE and the platform agree on MQTT passwords, instance
topics route sessions, the ACL rules, and older keyrings gain the gateway's secret once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anju.device.secure_element import SoftwareSecureElement
from anju.errors import KeyUnavailable
from anju.gateway.credentials import (
    GATEWAY_USERNAME,
    gateway_password,
    may_publish,
    may_receive,
    may_subscribe,
)
from anju.kit.keyring import FileKeyProvider
from anju.protocol.errors import ProtocolError
from anju.protocol.keys import MQTT_PASSWORD_LABEL, mqtt_password
from anju.protocol.topics import (
    instance_of_session,
    instance_subscription,
    parse_up_topic,
    session_up_topic,
    up_topic,
)

A = "a" * 32
B = "b" * 32


@pytest.mark.req("L14", "R18", "R19")
def test_platform_computes_the_same_mqtt_password_as_the_secure_element(tmp_path: Path) -> None:
    se, record = SoftwareSecureElement.manufacture(tmp_path / "se", device_id=A, pin=b"1234")
    se.verify_pin(b"1234")
    from_se = se.hmac(MQTT_PASSWORD_LABEL, bytes.fromhex(A)).hex()
    assert mqtt_password(record.root_key, A) == from_se
    assert len(from_se) == 64
    _other, other_record = SoftwareSecureElement.manufacture(
        tmp_path / "se2", device_id=B, pin=b"1234"
    )
    assert mqtt_password(other_record.root_key, B) != from_se  # one device, one password
    assert mqtt_password(record.root_key, B) != from_se  # bound to the device id


@pytest.mark.req("L16", "R15")
def test_instance_topics_route_a_session_to_the_gateway_that_holds_it() -> None:
    session_id = bytes.fromhex("12ab") + bytes(6)
    assert instance_of_session(session_id) == 0x12AB
    topic = session_up_topic(A, 0x12AB)
    assert topic == f"anju/v1/dev/{A}/up/12ab"
    assert parse_up_topic(topic) == (A, 0x12AB)
    assert parse_up_topic(up_topic(A)) == (A, None)
    assert instance_subscription(0) == "anju/v1/dev/+/up/0000"
    for bad in (
        f"anju/v1/dev/{A}/up/12AB",
        f"anju/v1/dev/{A}/up/123",
        f"anju/v1/dev/{A}/up/12ab/x",
        f"anju/v1/dev/{A}/down",
        "anju/v1/dev/+/up",
        f"anju/v2/dev/{A}/up",
    ):
        with pytest.raises(ProtocolError) as caught:
            parse_up_topic(bad)
        assert caught.value.code == "topic_invalid"
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        session_up_topic(A, 65536)


@pytest.mark.req("L16", "R16")
def test_acl_devices_use_only_their_own_topics_and_the_gateway_only_its_filters() -> None:
    assert may_publish(A, f"anju/v1/dev/{A}/up")
    assert may_publish(A, f"anju/v1/dev/{A}/up/0001")
    assert not may_publish(A, f"anju/v1/dev/{B}/up")
    assert not may_publish(A, f"anju/v1/dev/{B}/up/0001")
    assert not may_publish(A, f"anju/v1/dev/{A}/down")
    assert not may_publish(A, "anju/v1/dev/+/up")
    assert may_subscribe(A, f"anju/v1/dev/{A}/down")
    assert not may_subscribe(A, f"anju/v1/dev/{B}/down")
    assert not may_subscribe(A, "anju/v1/dev/+/down")
    assert not may_subscribe(A, "#")
    assert may_receive(A, f"anju/v1/dev/{A}/down")
    assert not may_receive(A, f"anju/v1/dev/{B}/down")
    gw = GATEWAY_USERNAME
    assert may_subscribe(gw, "anju/v1/dev/+/up")
    assert may_subscribe(gw, "$share/anju/anju/v1/dev/+/up")
    assert may_subscribe(gw, "anju/v1/dev/+/up/00ff")
    assert not may_subscribe(gw, "anju/v1/dev/+/down")
    assert not may_subscribe(gw, "#")
    assert may_publish(gw, f"anju/v1/dev/{A}/down")
    assert not may_publish(gw, f"anju/v1/dev/{A}/up")
    assert may_receive(gw, f"anju/v1/dev/{A}/up/0000")
    assert not may_publish("someone", f"anju/v1/dev/{A}/up")


@pytest.mark.req("R16", "L14")
def test_upgrade_adds_the_gateway_secret_to_an_older_keyring_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keyring.json"
    FileKeyProvider.create(path)
    data = json.loads(path.read_text())
    del data["secrets"]["mqtt-gateway"]  # as written before the gateway existed
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    old = FileKeyProvider.load(path)  # still opens
    with pytest.raises(KeyUnavailable, match="anju db upgrade"):
        gateway_password(old)
    assert FileKeyProvider.load(path).add_missing_named_keys() == ["mqtt-gateway"]
    first = gateway_password(FileKeyProvider.load(path))
    assert FileKeyProvider.load(path).add_missing_named_keys() == []
    assert gateway_password(FileKeyProvider.load(path)) == first
    assert len(first) == 64
    assert first != FileKeyProvider.load(path).secret("blind-index").hex()
