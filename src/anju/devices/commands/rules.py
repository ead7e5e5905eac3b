"""The one place for command vocabulary and rules: statuses, limits, argument checks, codes.

Life of a command (docs/devices.md, "Commands")::

    queued ──mark_sent──▶ sent ──ack ok──▶ acked
      │                    │ └──ack not ok──▶ failed (the device's code)
      │                    ├──no ack after max_attempts sends──▶ failed (no_ack)
      ├────────────────────┴──TTL over──▶ expired
      └──cancel──▶ cancelled
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from anju.devices.command_models import DeviceCommand
from anju.devices.lifecycle import Status
from anju.errors import Conflict, InvalidInput, PayloadTooLarge
from anju.protocol.errors import ProtocolError
from anju.protocol.messages import encode_message


class CommandStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    ACKED = "acked"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


#: Statuses from which a command may still reach the device.
PENDING = (CommandStatus.QUEUED, CommandStatus.SENT)
#: Devices that accept new commands. Offline ones store them until they connect; suspended
#: ones until they are resumed (the TTL bounds the wait). Unclaimed, revoked and
#: decommissioned devices refuse them.
COMMANDABLE = frozenset({Status.REGISTERED, Status.ACTIVE, Status.SUSPENDED})

#: Seconds a sent command waits for its ack before it is sent again.
RETRY_INTERVAL_SECONDS = 10.0
DEFAULT_MAX_ATTEMPTS = 5
MAX_ATTEMPTS_LIMIT = 20
DEFAULT_TTL_SECONDS = 3600
MAX_TTL_SECONDS = 7 * 24 * 3600
MAX_ARGS_BYTES = 8192  # canonical JSON of the arguments
MAX_DELIVERABLE = 1000

COMMAND_NAME = re.compile(r"[a-z][a-z0-9_.]{0,63}")
RESULT_CODE = re.compile(r"[a-z0-9_]{1,64}")

# Result codes the platform sets itself (a device's own codes come with its ack).
NO_ACK = "no_ack"
EXPIRED = "expired"
CANCELLED = "cancelled"
DEVICE_FAILED = "failed"  # the device said "not ok" without a code

# The id put in a command's message when measuring that it fits a frame: a uuid's length, so the
# measured size is the sent size. Used only for that check; never sent.
_PROBE_ID = "00000000-0000-4000-8000-000000000000"


class InvalidCommand(InvalidInput):
    code = "invalid_command"


class CommandTooLarge(PayloadTooLarge):
    code = "command_too_large"


class DeviceNotCommandable(Conflict):
    code = "device_not_commandable"


class CommandNotCancellable(Conflict):
    code = "command_not_cancellable"


def check_name(name: object) -> str:
    """A command name: ``[a-z][a-z0-9_.]{0,63}``."""
    if not isinstance(name, str) or not COMMAND_NAME.fullmatch(name):
        raise InvalidCommand(
            "命令名须为小写字母开头的 1–64 个 a-z 0-9 _ . / command names: [a-z][a-z0-9_.]{0,63}",
            details={"field": "name"},
        )
    return name


def check_args(name: str, args: object) -> str:
    """The canonical JSON text of valid arguments (a JSON object, ≤ 8 KiB, no floats)."""
    if not isinstance(args, dict):
        raise InvalidCommand("参数须为 JSON 对象 / args must be a JSON object", details=_args())
    for key in args:
        if not isinstance(key, str) or not COMMAND_NAME.fullmatch(key):
            raise InvalidCommand(
                "参数名须为 [a-z][a-z0-9_.]{0,63} / argument names: [a-z][a-z0-9_.]{0,63}",
                details=_args("name"),
            )
    message = {"t": "cmd", "id": _PROBE_ID, "name": name, "args": args, "exp": 0}
    try:
        encode_message(message, "platform")  # what the gateway will send must encode
        text = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        size = len(text.encode("utf-8"))
    except ProtocolError as error:
        if error.code == "message_too_large":
            raise _too_large() from None
        raise InvalidCommand(
            "参数只能含字符串、整数（±2^53）、布尔、空、数组和对象，嵌套不超过 7 层 / "
            "args may hold strings, integers (±2^53), booleans, null, arrays and objects, "
            "nested at most 7 deep",
            details=_args("value"),
        ) from None
    except (UnicodeEncodeError, ValueError, RecursionError):
        raise InvalidCommand(
            "参数不是有效的 JSON / args are not valid JSON", details=_args()
        ) from None
    if size > MAX_ARGS_BYTES:
        raise _too_large()
    return text


def _args(reason: str = "type") -> dict[str, Any]:
    return {"field": "args", "reason": reason}


def _too_large() -> CommandTooLarge:
    return CommandTooLarge(
        f"参数超过 {MAX_ARGS_BYTES} 字节 / args exceed {MAX_ARGS_BYTES} bytes (canonical JSON)",
        details={"field": "args", "max_bytes": MAX_ARGS_BYTES},
    )


def check_ttl(ttl_seconds: object) -> int:
    """A time to live of 1 s to 7 days."""
    if (
        not isinstance(ttl_seconds, int)
        or isinstance(ttl_seconds, bool)
        or not 1 <= ttl_seconds <= MAX_TTL_SECONDS
    ):
        raise InvalidCommand(
            f"有效期须为 1–{MAX_TTL_SECONDS} 秒 / ttl_seconds: 1–{MAX_TTL_SECONDS}",
            details={"field": "ttl_seconds"},
        )
    return ttl_seconds


def check_max_attempts(max_attempts: object) -> int:
    """How many times a command may be sent: 1 to 20."""
    if (
        not isinstance(max_attempts, int)
        or isinstance(max_attempts, bool)
        or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT
    ):
        raise InvalidCommand(
            f"发送次数须为 1–{MAX_ATTEMPTS_LIMIT} / max_attempts: 1–{MAX_ATTEMPTS_LIMIT}",
            details={"field": "max_attempts"},
        )
    return max_attempts


def check_result_code(code: str | None) -> str | None:
    """A device's result code (``[a-z0-9_]{1,64}``) as carried by its ack."""
    if code is not None and not RESULT_CODE.fullmatch(code):
        raise InvalidInput("结果码格式错误 / result codes: [a-z0-9_]{1,64}")
    return code


def epoch_ms(moment: datetime) -> int:
    """Unix milliseconds of an aware datetime (the wire counts time in ms)."""
    return int(moment.timestamp() * 1000)


def command_message(command: DeviceCommand) -> dict[str, Any]:
    """The ``cmd`` message the device receives for ``command`` (docs/protocol.md)."""
    return {
        "t": "cmd",
        "id": command.id,
        "name": command.name,
        "args": json.loads(command.args),
        "exp": epoch_ms(command.expires_at),
    }


def arg_names(command: DeviceCommand) -> list[str]:
    """The top-level argument names of a command (its values are never shown or logged)."""
    value = json.loads(command.args)
    return sorted(value) if isinstance(value, dict) else []
