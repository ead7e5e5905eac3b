"""Every endpoint and dependency of the API is a coroutine: FastAPI runs a plain ``def`` one in a
worker thread, a thread hop on every request that costs CPU and adds latency for nothing."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant

from anju.api.deps import api_routes
from anju.app import create_app
from anju.platform import Platform


def calls(dependant: Dependant) -> Iterator[object]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from calls(sub)


def is_async(call: object) -> bool:
    target = call if inspect.isfunction(call) else getattr(call, "__call__", call)  # noqa: B004
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


@pytest.mark.req("R11")
async def test_no_endpoint_or_dependency_runs_in_a_worker_thread(platform: Platform) -> None:
    app = create_app(platform)
    routes = list(api_routes(app.routes))
    assert len(routes) > 100
    threaded = sorted(
        {
            f"{route.path}: {getattr(call, '__qualname__', call)}"
            for route in routes
            for call in calls(route.dependant)
            if not is_async(call)
        }
    )
    assert threaded == []
