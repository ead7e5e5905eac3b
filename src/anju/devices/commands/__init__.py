"""Device commands with store-and-forward (docs/devices.md, "Commands")."""

from anju.devices.command_models import DeviceCommand
from anju.devices.commands.rules import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TTL_SECONDS,
    MAX_ARGS_BYTES,
    MAX_TTL_SECONDS,
    RETRY_INTERVAL_SECONDS,
    CommandNotCancellable,
    CommandStatus,
    CommandTooLarge,
    DeviceNotCommandable,
    InvalidCommand,
    arg_names,
    check_args,
    command_message,
)
from anju.devices.commands.service import CommandCounters, CommandService

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_TTL_SECONDS",
    "MAX_ARGS_BYTES",
    "MAX_TTL_SECONDS",
    "RETRY_INTERVAL_SECONDS",
    "CommandCounters",
    "CommandNotCancellable",
    "CommandService",
    "CommandStatus",
    "CommandTooLarge",
    "DeviceCommand",
    "DeviceNotCommandable",
    "InvalidCommand",
    "arg_names",
    "check_args",
    "command_message",
]
