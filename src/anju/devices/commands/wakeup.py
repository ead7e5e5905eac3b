"""Waking command delivery the moment a new command is committed (docs/gateway.md, "Commands").

:func:`announce_after_commit` is called by the service in the enqueuing transaction. Then:

* **in this process**, every function given to :func:`subscribe` is called with the device ids
  right after that transaction commits — never for one that rolls back;
* **in other processes** (PostgreSQL only), the same transaction runs
  ``pg_notify('anju_commands', '<origin> <device id>')`` — unless a gateway of this process
  holds the device's session, since no other process would deliver to it (a round trip saved
  on every command of a single-process platform): PostgreSQL delivers a notification
  only when its transaction commits, to every session that ``LISTEN``\\ s on the channel (the
  gateway does, :mod:`anju.gateway.command_notices`). ``origin`` names the sending process, so
  a listener skips notices its own process has already acted on.

SQLite has no NOTIFY: a gateway in another process finds the command at its next poll
(``command_poll_seconds``). A listener's failure is logged and never undoes the commit.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

logger = logging.getLogger("anju.devices.commands")

#: The PostgreSQL notification channel (one per database; payload "<origin> <device id>").
CHANNEL = "anju_commands"
#: This process, as named in its notifications.
ORIGIN = secrets.token_hex(8)

#: Called with the device ids that have new commands; None: "anything may be due".
Listener = Callable[[Collection[str] | None], None]

#: Says whether this process holds a device's session (and so delivers its commands itself).
Holder = Callable[[str], bool]

_listeners: list[Listener] = []
_holders: list[Holder] = []
_PENDING = "anju.commands.wakeup"  # Session.info key: device ids announced in this transaction


def subscribe(listener: Listener, holds: Holder | None = None) -> Callable[[], None]:
    """Call ``listener`` after each commit that queued commands; returns the unsubscribe.

    ``holds``: the subscriber delivers to the devices it says it holds, so commands for them
    need no notification to other processes."""
    _listeners.append(listener)
    if holds is not None:
        _holders.append(holds)

    def unsubscribe() -> None:
        if listener in _listeners:
            _listeners.remove(listener)
        if holds is not None and holds in _holders:
            _holders.remove(holds)

    return unsubscribe


def held_here(device_id: str) -> bool:
    """A gateway of this process holds ``device_id``'s session."""
    return any(holds(device_id) for holds in _holders)


def wake_local(device_ids: Collection[str] | None = None) -> None:
    """Call every listener of this process now (None: every device may have commands due)."""
    for listener in list(_listeners):
        try:
            listener(device_ids)
        except Exception:
            logger.exception("a command wake-up listener failed")


async def announce_after_commit(session: AsyncSession, device_id: str) -> None:
    """Wake command delivery for ``device_id`` once ``session``'s transaction commits."""
    info: dict[str, Any] = session.info
    pending: set[str] | None = info.get(_PENDING)
    if pending is None:
        pending = info[_PENDING] = set()
        sync = session.sync_session
        event.listen(sync, "after_commit", _after_commit)
        event.listen(sync, "after_rollback", _after_rollback)
    if device_id in pending:
        return
    pending.add(device_id)
    # A session held here is woken after the commit by this process's listeners; should it
    # move to another process meanwhile, that process serves it on the new session anyway.
    if session.get_bind().dialect.name == "postgresql" and not held_here(device_id):
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": f"{ORIGIN} {device_id}"},
        )


def device_of_notice(payload: str) -> str | None:
    """The device id of a notification from another process (None: ours, or malformed)."""
    origin, _, device_id = payload.partition(" ")
    if origin == ORIGIN or not device_id:
        return None
    return device_id


def _after_commit(session: Session) -> None:
    pending: set[str] | None = session.info.get(_PENDING)
    if pending:
        device_ids = frozenset(pending)
        pending.clear()
        wake_local(device_ids)


def _after_rollback(session: Session) -> None:
    pending: set[str] | None = session.info.get(_PENDING)
    if pending:
        pending.clear()
