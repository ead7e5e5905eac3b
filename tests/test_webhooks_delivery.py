"""Signed webhooks to a real loopback receiver: signature, retries, dead ends, timeouts, SSRF."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from anju.alarms.service import raise_platform_alarm
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.webhooks.dispatcher import WebhookDispatcher
from anju.webhooks.rules import retry_ceiling_seconds
from anju.webhooks.signing import ID_HEADER, verify
from tests.support.http import api_client, code_of, signed_in
from tests.support.records import Door, Receiver, door


def loopback(platform: Platform, **overrides: Any) -> Platform:
    """The platform with loopback webhook targets allowed (the test receiver)."""
    settings = platform.settings.model_copy(update={"webhook_allow_private": True, **overrides})
    return Platform(settings=settings, db=platform.db, keys=platform.keys, clock=platform.clock)


async def subscribe(platform: Platform, clock: FixedClock, d: Door, url: str) -> dict[str, Any]:
    async with api_client(platform) as client:
        headers = await signed_in(client, clock, d.tenant.admin)
        response = await client.post(
            "/api/v1/webhooks",
            json={"url": url, "event_types": ["alarm.raised", "alarm.cleared"]},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


async def raise_tamper(platform: Platform, d: Door) -> None:
    async with platform.db.transaction() as session:
        await raise_platform_alarm(
            platform, session, org_id=d.org_id, kind="abnormal_grant", subject="tenant-0042"
        )


def now_s(clock: FixedClock) -> int:
    return int(clock.now().timestamp())


@pytest.mark.req("L17", "R2", "L11")
async def test_delivery_is_signed_and_carries_no_clear_subject(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    platform = loopback(platform)
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    async with Receiver() as receiver:
        endpoint = await subscribe(platform, clock, d, receiver.url)
        await raise_tamper(platform, d)
        dispatcher = WebhookDispatcher(platform)
        try:
            assert await dispatcher.deliver_due() == 1
        finally:
            await dispatcher.aclose()
    (got,) = receiver.received
    secret = endpoint["secret"]
    assert verify(secret, got.headers, got.body, now_s=now_s(clock))
    # A tampered body, a wrong secret or a stale timestamp fail the receiver's check.
    assert not verify(
        secret, got.headers, got.body.replace(b"abnormal", b"abnormaX"), now_s=now_s(clock)
    )
    assert not verify("whsec_other", got.headers, got.body, now_s=now_s(clock))
    assert not verify(secret, got.headers, got.body, now_s=now_s(clock) + 301)
    payload = json.loads(got.body)
    assert payload["id"] == got.headers[ID_HEADER]
    assert payload["type"] == "alarm.raised"
    assert payload["data"]["kind"] == "abnormal_grant"
    assert b"tenant-0042" not in got.body
    assert payload["data"]["subject"] == "t*********2"


@pytest.mark.req("L17", "R2")
async def test_retry_after_500_then_success_is_logged(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    platform = loopback(platform)
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    async with Receiver([500, 200]) as receiver:
        endpoint = await subscribe(platform, clock, d, receiver.url)
        await raise_tamper(platform, d)
        dispatcher = WebhookDispatcher(platform)
        try:
            assert await dispatcher.deliver_due() == 1  # 500
            assert await dispatcher.deliver_due() == 0  # backing off
            clock.advance(seconds=retry_ceiling_seconds(1))
            assert await dispatcher.deliver_due() == 1  # 200
        finally:
            await dispatcher.aclose()
    assert len(receiver.received) == 2
    assert receiver.received[0].headers[ID_HEADER] == receiver.received[1].headers[ID_HEADER]
    async with api_client(platform) as client:
        headers = await signed_in(client, clock, d.tenant.admin, step_up=False)
        log = (
            await client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=headers)
        ).json()
        assert [(x["status"], x["attempts"], x["last_status_code"]) for x in log] == [
            ("delivered", 2, 200)
        ]
        detail = (
            await client.get(f"/api/v1/webhooks/deliveries/{log[0]['id']}", headers=headers)
        ).json()
        assert [(a["status_code"], a["outcome"]) for a in detail["attempt_log"]] == [
            (500, "retry"),
            (200, "delivered"),
        ]


@pytest.mark.req("L17")
async def test_dead_after_the_attempt_limit_and_timeouts_count(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    platform = loopback(platform, webhook_max_attempts=2, webhook_timeout_seconds=0.5)
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    async with Receiver([None, 503]) as receiver:
        endpoint = await subscribe(platform, clock, d, receiver.url)
        await raise_tamper(platform, d)
        dispatcher = WebhookDispatcher(platform)
        try:
            assert await dispatcher.deliver_due() == 1  # times out
            clock.advance(seconds=retry_ceiling_seconds(1))
            assert await dispatcher.deliver_due() == 1  # 503: the limit
            clock.advance(seconds=retry_ceiling_seconds(5))
            assert await dispatcher.deliver_due() == 0  # dead: never again
        finally:
            await dispatcher.aclose()
    async with api_client(platform) as client:
        headers = await signed_in(client, clock, d.tenant.admin, step_up=False)
        log = (
            await client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=headers)
        ).json()
        detail = (
            await client.get(f"/api/v1/webhooks/deliveries/{log[0]['id']}", headers=headers)
        ).json()
    assert detail["status"] == "dead"
    assert [(a["status_code"], a["error"], a["outcome"]) for a in detail["attempt_log"]] == [
        (None, "timeout", "retry"),
        (503, "http_status", "dead"),
    ]


@pytest.mark.req("L17")
async def test_alarm_reaches_the_receiver_within_a_second(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    platform = loopback(platform)
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    async with Receiver() as receiver:
        await subscribe(platform, clock, d, receiver.url)
        dispatcher = WebhookDispatcher(platform, poll_seconds=30)  # only the wake-up is fast
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        try:
            await asyncio.sleep(0.1)
            started = asyncio.get_running_loop().time()
            await raise_tamper(platform, d)
            await asyncio.wait_for(receiver.arrived.wait(), timeout=5)
            assert receiver.received[0].at - started < 1.0
        finally:
            stop.set()
            await task
            await dispatcher.aclose()


@pytest.mark.req("L17", "R9")
async def test_targets_are_guarded_and_need_the_right(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    async with api_client(platform) as client:
        headers = await signed_in(client, clock, d.tenant.admin)
        for url in (
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://10.1.2.3/x",
            "http://169.254.169.254/latest/meta-data",
            "ftp://example.com/x",
            "http://user:pw@example.com/x",
        ):
            response = await client.post(
                "/api/v1/webhooks",
                json={"url": url, "event_types": ["alarm.raised"]},
                headers=headers,
            )
            assert response.status_code == 422, url
            assert code_of(response) == "webhook_target_refused", url
        response = await client.post(
            "/api/v1/webhooks",
            json={"url": "https://example.com/x", "event_types": ["no.such"]},
            headers=headers,
        )
        assert code_of(response) == "invalid_input"
        response = await client.get("/api/v1/webhooks")
        assert response.status_code == 401
