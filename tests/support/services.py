"""Reachability of the services the tests use; in CI a missing one fails, never skips."""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_URL = os.environ.get(
    "ANJU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MOSQUITTO_HOST = os.environ.get("ANJU_TEST_MOSQUITTO_HOST", "127.0.0.1")
MOSQUITTO_PORT = int(os.environ.get("ANJU_TEST_MOSQUITTO_PORT", "1883"))


def services_required() -> bool:
    return os.environ.get("ANJU_REQUIRE_SERVICES") == "1"


def tcp_reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, reachable: bool) -> None:
    """Skip locally, fail in CI (ANJU_REQUIRE_SERVICES=1), when a service is missing."""
    if reachable:
        return
    message = f"{name} is not reachable"
    if services_required():
        pytest.fail(f"{message} and ANJU_REQUIRE_SERVICES=1")
    pytest.skip(message)
