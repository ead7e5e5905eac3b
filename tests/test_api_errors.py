"""The HTTP error model: bad input is a stable 4xx, surprises are a 500 that leaks nothing."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from anju.api.deps import DbSession, check_transaction_scope, db_session
from anju.app import create_app
from anju.errors import ConfigurationError, Conflict
from anju.kit.jsonlog import JsonFormatter
from anju.platform import Platform

MAX_BYTES = 4096
ID_NUMBER = "11010519491231002X"


class _ProbeBase(DeclarativeBase):
    pass


class Probe(_ProbeBase):
    """A throwaway table for transaction-boundary tests (not part of anju's schema)."""

    __tablename__ = "api_test_probe"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)


class Guest(BaseModel):
    name: str
    count: int


def add_test_routes(app: FastAPI) -> None:
    @app.post("/_test/guests")
    async def create_guest(guest: Guest) -> dict[str, int]:
        return {"received": guest.count}

    @app.get("/_test/boom")
    async def boom() -> None:
        raise RuntimeError(f"database password=hunter2 leaked for {ID_NUMBER}")

    @app.get("/_test/conflict")
    async def conflict() -> None:
        raise Conflict("房间已被占用 / room is taken", details={"room": "1203"})

    @app.get("/_test/misconfigured")
    async def misconfigured() -> None:
        raise ConfigurationError("key file /secret/path/keyring.json has loose permissions")

    @app.post("/_test/probes/{probe_id}")
    async def add_probe(probe_id: str, session: DbSession) -> dict[str, str]:
        session.add(Probe(id=probe_id))  # flushed by the commit after the endpoint returns
        return {"id": probe_id}

    @app.post("/_test/probes/{probe_id}/then-fail")
    async def add_probe_then_fail(probe_id: str, session: DbSession) -> None:
        session.add(Probe(id=probe_id))
        await session.flush()
        raise Conflict("changed my mind")


@pytest.fixture
async def app(platform: Platform) -> FastAPI:
    settings = platform.settings.model_copy(update={"max_request_bytes": MAX_BYTES})
    app = create_app(dataclasses.replace(platform, settings=settings))
    add_test_routes(app)
    async with platform.db.engine.begin() as conn:
        await conn.run_sync(_ProbeBase.metadata.create_all)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://anju.test") as client:
        yield client


@pytest.fixture
def server_log() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    details: dict[str, object] = body["error"]["details"]
    return details


@pytest.mark.req("R12", "R16")
async def test_valid_request_passes(client: httpx.AsyncClient) -> None:
    response = await client.post("/_test/guests", json={"name": "x", "count": 2})
    assert response.status_code == 200
    assert response.json() == {"received": 2}


@pytest.mark.req("R12", "R16")
async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/_test/guests",
        content=b'{"name": "x", "count": ',
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "malformed_json")


@pytest.mark.req("R12", "R16", "L11")
async def test_wrong_types_are_422_with_field_paths_and_no_echo(client: httpx.AsyncClient) -> None:
    response = await client.post("/_test/guests", json={"name": ID_NUMBER, "count": ID_NUMBER})
    details = assert_error(response, 422, "invalid_input")
    assert details["fields"] == [
        {
            "path": "body.count",
            "type": "int_parsing",
            "message": "Input should be a valid integer, unable to parse string as an integer",
        }
    ]
    assert ID_NUMBER not in response.text


@pytest.mark.req("R12")
async def test_missing_fields_are_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/_test/guests", json={})
    details = assert_error(response, 422, "invalid_input")
    assert {f["path"] for f in details["fields"]} == {"body.name", "body.count"}  # type: ignore[attr-defined,index]


@pytest.mark.req("R12", "R16")
@pytest.mark.parametrize(
    "headers",
    [{"content-type": "text/plain"}, {"content-type": "application/xml"}, {}],
    ids=["text-plain", "xml", "no-content-type"],
)
async def test_wrong_content_type_is_415(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/_test/guests", content=b'{"name": "x", "count": 1}', headers=headers
    )
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.req("R12")
async def test_unknown_route_is_404_and_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/nowhere"), 404, "not_found")
    response = await client.get("/_test/guests")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


@pytest.mark.req("R16")
async def test_honest_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/_test/guests",
        content=b"x" * (MAX_BYTES + 1),
        headers={"content-type": "application/json"},
    )
    details = assert_error(response, 413, "payload_too_large")
    assert details == {"max_bytes": MAX_BYTES}


@pytest.mark.req("R16")
async def test_oversized_body_with_lying_content_length_is_413(
    client: httpx.AsyncClient,
) -> None:
    body = json.dumps({"name": "x" * (MAX_BYTES * 2), "count": 1}).encode()
    response = await client.post(
        "/_test/guests",
        content=body,
        headers={"content-type": "application/json", "content-length": "20"},
    )
    assert_error(response, 413, "payload_too_large")


@pytest.mark.req("R16")
async def test_oversized_chunked_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"y" * 1024
        yield b'", "count": 1}'

    response = await client.post(
        "/_test/guests", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


@pytest.mark.req("R16")
async def test_chunked_body_under_the_limit_passes(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        yield b"y" * 1024
        yield b'", "count": 7}'

    response = await client.post(
        "/_test/guests", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"received": 7}


@pytest.mark.req("R16", "L11")
async def test_unexpected_exception_is_500_without_internals(
    client: httpx.AsyncClient, server_log: io.StringIO
) -> None:
    response = await client.get("/_test/boom", headers={"x-request-id": "trace-me-42"})
    details = assert_error(response, 500, "internal_error")
    assert details == {"request_id": "trace-me-42"}
    assert response.headers["x-request-id"] == "trace-me-42"
    for leaked in ("hunter2", "RuntimeError", "password", ID_NUMBER, "Traceback"):
        assert leaked not in response.text
    # The operator finds the traceback by request id, with the PI masked and secret redacted.
    logged = [json.loads(line) for line in server_log.getvalue().splitlines()]
    errors = [e for e in logged if e["message"] == "unhandled error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "trace-me-42"
    assert "RuntimeError" in errors[0]["exception"]
    assert "hunter2" not in server_log.getvalue()
    assert ID_NUMBER not in server_log.getvalue()


@pytest.mark.req("R12")
async def test_domain_errors_keep_their_code_and_message(client: httpx.AsyncClient) -> None:
    details = assert_error(await client.get("/_test/conflict"), 409, "conflict")
    assert details == {"room": "1203"}


@pytest.mark.req("R16")
async def test_server_side_domain_errors_hide_their_message(client: httpx.AsyncClient) -> None:
    response = await client.get("/_test/misconfigured", headers={"x-request-id": "r-5"})
    details = assert_error(response, 500, "configuration_error")
    assert details == {"request_id": "r-5"}
    assert "/secret/path" not in response.text


@pytest.mark.req("R16")
async def test_request_id_is_generated_or_echoed(client: httpx.AsyncClient) -> None:
    generated = (await client.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32
    echoed = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    # An id that could forge log lines is replaced, not echoed.
    forged = await client.get("/healthz", headers={"x-request-id": "a\tb" + "x" * 100})
    assert forged.headers["x-request-id"] != "a\tb" + "x" * 100


@pytest.mark.req("R16")
async def test_security_headers_on_every_response(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/healthz"), await client.get("/nowhere")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.req("R16")
async def test_access_log_has_no_query_string(
    client: httpx.AsyncClient, server_log: io.StringIO
) -> None:
    await client.get("/healthz", params={"phone": "13812345678", "q": "zhangsan"})
    lines = server_log.getvalue().splitlines()
    server_side = [line for line in lines if json.loads(line)["logger"] != "httpx"]  # the client
    access = [json.loads(line) for line in server_side if '"anju.access"' in line]
    assert len(access) == 1
    assert access[0]["path"] == "/healthz"
    assert access[0]["route"] == "/healthz"
    assert access[0]["status"] == 200
    assert access[0]["message"] == "GET /healthz 200"
    assert not any("13812345678" in line or "zhangsan" in line for line in server_side)


async def _probe_ids(platform: Platform) -> set[str]:
    async with platform.db.transaction() as session:
        return set((await session.scalars(select(Probe.id))).all())


@pytest.mark.req("R16")
async def test_request_transaction_commits_before_the_response(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    response = await client.post("/_test/probes/p1")
    assert response.status_code == 200
    assert await _probe_ids(platform) == {"p1"}


@pytest.mark.req("R16")
async def test_request_transaction_rolls_back_on_error(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    response = await client.post("/_test/probes/p2/then-fail")
    assert_error(response, 409, "conflict")
    assert await _probe_ids(platform) == set()


@pytest.mark.req("R16")
async def test_failed_commit_is_a_500_not_a_success(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    async with platform.db.transaction() as session:
        session.add(Probe(id="dup"))
    response = await client.post("/_test/probes/dup")  # duplicate key only fails at commit
    assert_error(response, 500, "internal_error")
    assert "dup" not in response.text


@pytest.mark.req("R16")
async def test_session_without_function_scope_is_refused(platform: Platform) -> None:
    app = create_app(platform)

    @app.get("/_test/late-commit")
    async def late_commit(session: object = Depends(db_session)) -> None:
        return None

    with pytest.raises(RuntimeError, match="scope='function'"):
        check_transaction_scope(app)
