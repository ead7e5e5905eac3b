"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: it can do real work)."""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

from alembic.script import ScriptDirectory
from fastapi import APIRouter
from sqlalchemy import text
from starlette.responses import JSONResponse

from anju.api.deps import PlatformDep
from anju.api.errors import error_response
from anju.migrations import alembic_config, current_revisions
from anju.platform import Platform

router = APIRouter(tags=["health"])
logger = logging.getLogger("anju.api.health")

CHECK_TIMEOUT_SECONDS = 3.0


@cache
def migration_heads() -> frozenset[str]:
    """The head revisions shipped with this build (what a ready database must be at)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def _check_database(platform: Platform) -> str | None:
    async with platform.db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return None


async def _check_migrations(platform: Platform) -> str | None:
    current = await current_revisions(platform.db)
    heads = migration_heads()
    if current == heads:
        return None
    if not current:
        return "database schema is empty; run `anju db upgrade`"
    return (
        f"schema at {', '.join(sorted(current))}, this build needs {', '.join(sorted(heads))}; "
        "run `anju db upgrade`"
    )


async def _check_keys(platform: Platform) -> str | None:
    platform.keys.current_version()
    return None


_CHECKS = {
    "database": _check_database,
    "migrations": _check_migrations,
    "keys": _check_keys,
}


async def readiness(platform: Platform) -> dict[str, dict[str, Any]]:
    """Run every readiness check; each gives ``{"ok": bool, "reason"?: str}``."""
    results: dict[str, dict[str, Any]] = {}
    for name, check in _CHECKS.items():
        try:
            reason = await asyncio.wait_for(check(platform), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            reason = f"timed out after {CHECK_TIMEOUT_SECONDS:g}s"
        except Exception as exc:
            # The exception text may hold a connection URL or a path: log it, report the type.
            logger.warning("readiness check %s failed", name, exc_info=exc)
            reason = f"failed ({type(exc).__name__}); see the server log"
        results[name] = {"ok": True} if reason is None else {"ok": False, "reason": reason}
    return results


@router.get("/healthz", summary="Liveness: the process is up (no dependencies checked)")
async def healthz() -> dict[str, str]:
    """Always 200 while the process can answer."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable, schema at head, keys loaded",
    responses={503: {"description": "Not ready; `error.details.checks` says why"}},
)
async def readyz(platform: PlatformDep) -> JSONResponse:
    """200 when every check passes, else 503 in the error model with the failing checks."""
    checks = await readiness(platform)
    if all(result["ok"] for result in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    return error_response(503, "not_ready", "服务尚未就绪 / Service not ready.", {"checks": checks})
