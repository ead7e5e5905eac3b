"""Prometheus metrics: per-route counts and latencies, one registry per app."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from anju.app import create_app
from anju.platform import Platform


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.mark.req("R11", "R16")
async def test_requests_are_counted_by_route_template_and_status(platform: Platform) -> None:
    app = create_app(platform)

    @app.get("/_test/rooms/{room_id}")
    async def room(room_id: str) -> dict[str, str]:
        return {"room": room_id}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://anju.test") as client:
        for room_id in ("1203", "1204", "13812345678"):
            assert (await client.get(f"/_test/rooms/{room_id}")).status_code == 200
        await client.get("/no/such/13812345678")
        await client.request("BREW", "/healthz")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    counts = samples(text, "anju_http_requests_total")
    assert counts[(("method", "GET"), ("route", "/_test/rooms/{room_id}"), ("status", "200"))] == 3
    assert counts[(("method", "GET"), ("route", "<unmatched>"), ("status", "404"))] == 1
    assert counts[(("method", "OTHER"), ("route", "/healthz"), ("status", "405"))] == 1
    latency = samples(text, "anju_http_request_duration_seconds_count")
    assert latency[(("method", "GET"), ("route", "/_test/rooms/{room_id}"))] == 3
    assert "13812345678" not in text  # concrete paths never become labels
    assert "1203" not in text


@pytest.mark.req("R11")
async def test_each_app_has_its_own_registry(platform: Platform) -> None:
    first, second = create_app(platform), create_app(platform)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url="http://a"
    ) as client:
        await client.get("/healthz")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=second), base_url="http://b"
    ) as client:
        text = (await client.get("/metrics")).text
    assert samples(text, "anju_http_requests_total") == {}
