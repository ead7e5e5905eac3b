"""FastAPI dependencies shared by every endpoint: the platform and a per-request transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute

from anju.platform import Platform


async def get_platform(request: Request) -> Platform:
    """The platform the app was created with. (``async``, as every dependency here: FastAPI runs
    a plain ``def`` dependency in a worker thread, a thread hop per request for nothing.)"""
    platform: Platform = request.app.state.platform
    return platform


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed after the endpoint returns, rolled back on error.

    Declared with ``scope="function"`` (see :data:`DbSession`) so the commit happens *before*
    the response is sent: a failed commit becomes a 500, never a 200 for a lost change.
    """
    async with (await get_platform(request)).db.transaction() as session:
        yield session


PlatformDep = Annotated[Platform, Depends(get_platform)]
DbSession = Annotated[AsyncSession, Depends(db_session, scope="function")]


def _session_dependency_scopes(dependant: Dependant) -> Iterator[str | None]:
    for sub in dependant.dependencies:
        if sub.call is db_session:
            yield sub.scope
        yield from _session_dependency_scopes(sub)


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route under ``routes``, including those of included routers (which FastAPI
    keeps as one entry per ``include_router``, the router's own routes inside)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def check_transaction_scope(app: FastAPI) -> None:
    """Refuse routes that take :func:`db_session` without ``scope="function"`` (use DbSession).

    With the default request scope FastAPI commits *after* sending the response, so a failed
    commit would reach the client as a success.
    """
    for route in api_routes(app.routes):
        if any(scope != "function" for scope in _session_dependency_scopes(route.dependant)):
            raise RuntimeError(
                f"route {route.path} uses db_session without scope='function'; "
                "annotate the parameter with anju.api.deps.DbSession"
            )
