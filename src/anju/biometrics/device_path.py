"""The platform side of face biometrics on locks and kiosks (L8e, L9b; anju.protocol.biometrics).

An operator holding ``biometrics.enrol`` *offers* a device an enrolment (``bio.enrol``: capture
this person, make their next template version) or a template (``bio.load``: this person may be
recognised here), or withdraws one (``bio.drop``). Offers are commands of the store-and-forward
outbox and hold only the pseudonymous subject id and a version. On the strength of an offer in
force the gateway answers the device's ``bio_get`` with the projection key (and, for a load, the
protected template, opened from the PI vault for ``lock_credential_issue``) — built on demand,
sent sealed in the device's session, never stored in clear. The device's ``bio_template`` is
sealed by the vault (:meth:`BiometricService.store_protected`) and its ``bio_result`` logged in
the capture log; neither reaches ``device_events``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.audit import AuditLog
from anju.biometrics.service import (
    BiometricService,
    Operator,
    TemplateVersionConflict,
    check_subject,
)
from anju.devices.command_models import DeviceCommand
from anju.devices.commands import CommandService
from anju.devices.models import Device
from anju.errors import InvalidInput, NotFound
from anju.face.template import ProtectedTemplate
from anju.kit.crypto import sm3
from anju.platform import Platform
from anju.protocol.biometrics import (
    DROP_COMMAND,
    ENROL_COMMAND,
    LOAD_COMMAND,
    OFFER_COMMANDS,
    b64,
    check_subject_ref,
    command_args,
    unb64,
)

#: How long an offer stands (the person has this long to present themselves for enrolment).
OFFER_TTL_SECONDS = 3600
NOT_OFFERED = "bio_not_offered"
VERSION_CONFLICT = "bio_version_conflict"
MALFORMED = "bio_malformed"


def device_capture_id(device_id: str, message_id: str) -> str:
    """The capture log id of a device's message: derived, so a resend maps to the same row."""
    return sm3(f"anju/bio-capture/v1:{device_id}:{message_id}".encode())[:16].hex()


class DeviceFaces:
    """Offers to devices and what devices send back, in one session (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.faces = BiometricService(platform, session)
        self.commands = CommandService(platform, session)
        self.audit = AuditLog(platform)

    # --- offers (operators) ----------------------------------------------------------------
    async def offer_enrolment(
        self, principal: Principal, device_id: str, subject_id: str
    ) -> tuple[DeviceCommand, int]:
        """Ask the device to enrol the subject's next template version; (command, version)."""
        self._require(principal)
        version = await self.faces.latest_version(_ref(subject_id)) + 1
        command = await self._offer(principal, device_id, ENROL_COMMAND, subject_id, version)
        return command, version

    async def send_template(
        self, principal: Principal, device_id: str, subject_id: str
    ) -> tuple[DeviceCommand, int]:
        """Let the device recognise the subject: it fetches their template in force."""
        self._require(principal)
        await self.faces.require_template(_ref(subject_id))
        version = await self.faces.latest_version(subject_id)
        command = await self._offer(principal, device_id, LOAD_COMMAND, subject_id, version)
        return command, version

    async def withdraw(
        self, principal: Principal, device_id: str, subject_id: str
    ) -> DeviceCommand:
        """Tell the device to delete what it holds of the subject (check-out, withdrawal)."""
        self._require(principal)
        return await self._offer(principal, device_id, DROP_COMMAND, _ref(subject_id), None)

    def _require(self, principal: Principal) -> None:
        AccountService.require(principal, Cap.BIOMETRICS_ENROL)

    async def _offer(
        self,
        principal: Principal,
        device_id: str,
        name: str,
        subject_id: str,
        version: int | None,
    ) -> DeviceCommand:
        command = await self.commands.enqueue(
            principal.actor,
            principal.org_id,
            device_id,
            name,
            command_args(subject_id, version),
            OFFER_TTL_SECONDS,
        )
        await self.audit.record(
            self.session,
            action=f"biometric.device.{name.removeprefix('bio.')}",
            actor=principal.actor,
            org_id=command.org_id,
            target=f"subject:{subject_id}",
            details={"device": device_id, "command": command.id, "version": version},
        )
        return command

    # --- what devices send (the gateway) ---------------------------------------------------
    async def data_for(self, device_id: str, subject: str, version: int) -> dict[str, Any]:
        """The ``bio_data`` answer to a device's ``bio_get`` (every key or template released
        is audited)."""
        args = command_args(subject, version)
        offer = await self.commands.in_force(device_id, OFFER_COMMANDS, args)
        answer: dict[str, Any] = {"t": "bio_data", "subject": subject, "version": version}
        refusal = {**answer, "key": None, "tpl": None, "code": NOT_OFFERED}
        if offer is None:
            return refusal
        operator = await self._operator(device_id)
        template: str | None = None
        if offer.name == LOAD_COMMAND:
            try:
                in_force, opened = await self.faces.template_in_force(subject, operator)
            except NotFound:
                return refusal  # revoked since the offer
            if in_force != version:  # renewed since the offer
                return refusal
            template = b64(opened)
        await self.audit.record(
            self.session,
            action="biometric.device.template_sent" if template else "biometric.device.key_sent",
            actor=operator.actor,
            org_id=operator.org_id,
            target=f"subject:{subject}",
            details={"device": device_id, "command": offer.id, "version": version},
        )
        key = b64(self.faces.template_key(subject, version))
        return {**answer, "key": key, "tpl": template, "code": None}

    async def record_result(self, device_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """Log a device's ``bio_result`` in the capture log; the ``bio_ack``."""
        capture_id = device_capture_id(device_id, message["id"])
        if not await self.faces.capture_exists(capture_id):  # else a resend: acknowledge again
            await self.faces.record_capture(
                f"device_{message['kind']}",
                message["result"],
                message["reasons"],
                await self._operator(device_id),
                message["subject"],
                liveness=message["liveness"],
                capture_id=capture_id,
            )
        return _ack(message["id"], None)

    async def store_template(self, device_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """Seal a device's ``bio_template`` for its subject, if an enrolment offer stands."""
        capture_id = device_capture_id(device_id, message["id"])
        if await self.faces.capture_exists(capture_id):
            return _ack(message["id"], None)  # stored when it first came
        subject, version = message["subject"], message["version"]
        offer = await self.commands.in_force(
            device_id, (ENROL_COMMAND,), command_args(subject, version)
        )
        if offer is None:
            return _ack(message["id"], NOT_OFFERED)
        try:
            template = ProtectedTemplate.from_bytes(unb64(message["tpl"]))
        except ValueError:
            return _ack(message["id"], MALFORMED)
        try:
            await self.faces.store_protected(
                subject,
                version,
                template,
                await self._operator(device_id),
                capture_id=capture_id,
                liveness="passed",
            )
        except TemplateVersionConflict:
            return _ack(message["id"], VERSION_CONFLICT)
        return _ack(message["id"], None)

    async def _operator(self, device_id: str) -> Operator:
        device = await self.session.get(Device, device_id)
        return Operator(f"device:{device_id}", device_id, None if device is None else device.org_id)


def _ref(subject_id: str) -> str:
    check_subject(subject_id)
    try:
        return check_subject_ref(subject_id)
    except ValueError as exc:
        raise InvalidInput(
            "主体标识不能发送给设备 / subject ids sent to devices are 1–64 of A–Z a–z 0–9 _ -"
        ) from exc


def _ack(message_id: str, code: str | None) -> dict[str, Any]:
    return {"t": "bio_ack", "id": message_id, "ok": code is None, "code": code}
