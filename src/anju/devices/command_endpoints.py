"""HTTP endpoints under /api/v1 for device commands (docs/devices.md, "Commands").

Argument values are write-only: responses and audit entries show argument names and sizes,
never values (they may later carry credential material).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from anju.accounts.deps import CurrentPrincipal
from anju.api.deps import DbSession, PlatformDep
from anju.devices.command_models import DeviceCommand
from anju.devices.commands import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    CommandService,
    CommandStatus,
    arg_names,
)
from anju.devices.commands.rules import MAX_ATTEMPTS_LIMIT

router = APIRouter(prefix="/api/v1", tags=["device commands"])

DeviceIdPath = Annotated[str, Path(min_length=1, max_length=64)]
CommandIdPath = Annotated[str, Path(min_length=1, max_length=64)]


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    # Checked by the service: names, size (≤ 8 KiB canonical JSON), no floats, depth.
    args: Annotated[dict[str, Any], Field(max_length=256)] = Field(default_factory=dict)
    ttl_seconds: Annotated[int, Field(ge=1, le=MAX_TTL_SECONDS)] = DEFAULT_TTL_SECONDS
    max_attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)] = DEFAULT_MAX_ATTEMPTS


class CommandOut(BaseModel):
    id: str
    device_id: str
    seq: int
    name: str
    arg_names: list[str]
    args_bytes: int
    status: CommandStatus
    attempts: int
    max_attempts: int
    actor: str
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None
    finished_at: datetime | None
    result_code: str | None


def command_out(command: DeviceCommand) -> CommandOut:
    """The API view of a command: everything but the argument values."""
    return CommandOut(
        id=command.id,
        device_id=command.device_id,
        seq=command.seq,
        name=command.name,
        arg_names=arg_names(command),
        args_bytes=len(command.args.encode()),
        status=CommandStatus(command.status),
        attempts=command.attempts,
        max_attempts=command.max_attempts,
        actor=command.actor,
        created_at=command.created_at,
        expires_at=command.expires_at,
        sent_at=command.sent_at,
        acked_at=command.acked_at,
        finished_at=command.finished_at,
        result_code=command.result_code,
    )


@router.post(
    "/devices/{device_id}/commands",
    response_model=CommandOut,
    status_code=status.HTTP_201_CREATED,
)
async def submit_command(
    device_id: DeviceIdPath,
    body: CommandIn,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> CommandOut:
    """Queue a command to a device (sent when it is online; second factor required)."""
    command = await CommandService(platform, session).submit(
        principal,
        device_id,
        body.name,
        body.args,
        body.ttl_seconds,
        max_attempts=body.max_attempts,
    )
    return command_out(command)


@router.get("/devices/{device_id}/commands", response_model=list[CommandOut])
async def list_commands(
    device_id: DeviceIdPath,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
    command_status: Annotated[CommandStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[CommandOut]:
    """Commands of a device, newest first, optionally of one status."""
    rows = await CommandService(platform, session).list_for_device(
        principal, device_id, status=command_status, limit=limit, offset=offset
    )
    return [command_out(c) for c in rows]


@router.get("/commands/{command_id}", response_model=CommandOut)
async def get_command(
    command_id: CommandIdPath,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> CommandOut:
    """One command (404 for another organisation's)."""
    return command_out(await CommandService(platform, session).get(principal, command_id))


@router.post("/commands/{command_id}/cancel", response_model=CommandOut)
async def cancel_command(
    command_id: CommandIdPath,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> CommandOut:
    """Cancel a command that has not been sent yet (second factor required)."""
    command = await CommandService(platform, session).cancel(principal, command_id)
    return command_out(command)
