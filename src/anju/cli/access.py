"""``anju access …``: grants, credentials (with per-lock delivery state), offline passcodes,
freezes, anomalies and the expiry sweep (docs/access.md, "CLI").

The CLI is the platform operator's tool: it runs next to the keyring, acts as actor "cli" inside
the organisation ``--org`` names, and needs no second factor (the HTTP API requires one for
every change). Output is JSON; secrets (passcodes, card keys, eKey tokens, offline codes, clear
codes) are printed once, in the answer of the command that made them, and stored nowhere.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.anomalies import find_anomalies
from anju.access.credentials.issuing import refuse_unsupported
from anju.access.credentials.offline import OfflineRequest
from anju.access.credentials.service import CredentialService
from anju.access.expiry import sweep
from anju.access.freeze import FreezeService
from anju.access.grants import DoorSelector, GrantService, GrantSpec
from anju.access.keys import access_certificate
from anju.access.schemas import (
    anomaly_out,
    credential_out,
    delivery_out,
    freeze_out,
    grant_out,
    offline_out,
)
from anju.cli.common import DataDirOption, fail, run, settings_for
from anju.cli.common import in_transaction as _transaction
from anju.errors import AnjuError
from anju.platform import Platform, open_platform
from anju.protocol.access import Schedule, encode_signer

ACTOR = "cli"

app = typer.Typer(
    help="门禁：授权、凭证、离线密码、冻结、异常 / Access control: grants, credentials, offline "
    "passcodes, freezes, anomalies.",
    no_args_is_help=True,
)
grant_app = typer.Typer(help="授权 / Grants.", no_args_is_help=True)
credential_app = typer.Typer(help="凭证 / Credentials.", no_args_is_help=True)
app.add_typer(grant_app, name="grant")
app.add_typer(credential_app, name="credential")

OrgOption = Annotated[str, typer.Option("--org", help="Organisation id.")]
GrantArg = Annotated[str, typer.Argument(help="Grant id.")]
CredentialArg = Annotated[str, typer.Argument(help="Credential id.")]
TimeOption = Annotated[
    datetime | None,
    typer.Option(help="ISO time with a UTC offset, e.g. 2026-12-01T12:00:00+08:00."),
]


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str))


def _json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def _aware(value: datetime | None, option: str) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        fail(f"{option}: give a UTC offset (e.g. +08:00); naive times are refused")
    return value


def _schedule(weekdays: int | None, hours: str | None, utc_offset: int) -> Schedule | None:
    if weekdays is None and hours is None:
        return None
    if weekdays is None or hours is None:
        fail("--weekdays and --hours go together")
    try:
        start, end = (int(h.split(":")[0]) * 60 + int(h.split(":")[1]) for h in hours.split("-"))
        return Schedule(weekdays, start, end, utc_offset)
    except (ValueError, IndexError):
        fail("--hours: HH:MM-HH:MM, e.g. 08:00-18:00")
    except Exception as exc:  # the protocol's own check of the values
        fail(f"invalid schedule: {exc}")


# --- grants ------------------------------------------------------------------------------
@grant_app.command("create")
def grant_create(
    org: OrgOption,
    subject: Annotated[str, typer.Option("--subject", help="Pseudonymous subject id.")],
    person_type: Annotated[
        str, typer.Option("--person-type", help="owner | tenant | guest | visitor | staff.")
    ],
    device: Annotated[
        list[str] | None, typer.Option("--device", help="Lock device id (repeatable).")
    ] = None,
    place_kind: Annotated[
        str | None, typer.Option("--place-kind", help="Every lock of this place kind.")
    ] = None,
    place_ref: Annotated[
        str | None, typer.Option("--place-ref", help="Every lock of this place reference.")
    ] = None,
    valid_from: TimeOption = None,
    valid_until: TimeOption = None,
    weekdays: Annotated[
        int | None, typer.Option("--weekdays", help="Schedule days: bit 0 Monday … bit 6 Sunday.")
    ] = None,
    hours: Annotated[
        str | None, typer.Option("--hours", help="Schedule hours, local: HH:MM-HH:MM.")
    ] = None,
    utc_offset: Annotated[
        int, typer.Option("--utc-offset", help="Schedule's UTC offset in minutes.")
    ] = 480,
    uses: Annotated[int | None, typer.Option("--uses", help="Use count.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Grant a subject access to doors (limits by person type; anomalies flagged)."""
    spec = GrantSpec(
        subject_id=subject,
        person_type=person_type,
        doors=DoorSelector(tuple(device) if device else None, place_kind, place_ref),
        valid_from=_aware(valid_from, "--valid-from"),
        valid_until=_aware(valid_until, "--valid-until"),
        schedule=_schedule(weekdays, hours, utc_offset),
        uses=uses,
    )

    async def work(platform: Platform, session: AsyncSession) -> dict[str, Any]:
        grant, anomalies = await GrantService(platform, session).create(ACTOR, org, spec)
        return grant_out(grant, anomalies).model_dump(mode="json")

    _print(_transaction(data_dir, work))


@grant_app.command("list")
def grant_list(
    org: OrgOption,
    subject: Annotated[str | None, typer.Option("--subject", help="Only this subject.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="active | revoked | expired.")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """List grants of the organisation (newest first)."""

    async def work(platform: Platform, session: AsyncSession) -> list[dict[str, Any]]:
        rows = await GrantService(platform, session).search(
            org, subject_id=subject, status=status, limit=500
        )
        return [grant_out(g).model_dump(mode="json") for g in rows]

    _print(_transaction(data_dir, work))


@grant_app.command("revoke")
def grant_revoke(grant: GrantArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
    """End a grant; every credential under it is removed from the locks."""

    async def work(platform: Platform, session: AsyncSession) -> dict[str, Any]:
        row = await GrantService(platform, session).revoke(ACTOR, org, grant)
        return grant_out(row).model_dump(mode="json")

    _print(_transaction(data_dir, work))


# --- credentials -------------------------------------------------------------------------
@credential_app.command("issue")
def credential_issue(
    grant: GrantArg,
    org: OrgOption,
    kind: Annotated[str, typer.Option("--kind", help="passcode | card | ekey | offline | face.")],
    passcode: Annotated[
        str | None, typer.Option("--passcode", help="passcode: chosen digits (else generated).")
    ] = None,
    card_uid: Annotated[str | None, typer.Option("--card-uid", help="card: its UID, hex.")] = None,
    holder_key: Annotated[
        str | None, typer.Option("--holder-key", help="ekey: the phone's SM2 key x‖y, base64.")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="offline: the lock.")] = None,
    offline_kind: Annotated[
        str, typer.Option("--offline-kind", help="one_time | period | permanent | recurring.")
    ] = "period",
    valid_from: TimeOption = None,
    valid_until: TimeOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Issue a credential under a grant; its secret part is printed here, only once."""
    try:
        refuse_unsupported(kind)
    except AnjuError as exc:
        fail(f"{exc.message} [{exc.code}]")
    key_bytes: bytes | None = None
    if kind == "ekey":
        try:
            key_bytes = base64.b64decode(holder_key or "", validate=True)
        except (binascii.Error, ValueError):
            fail("--holder-key: base64 of the phone's SM2 public key")
    if kind == "card" and card_uid is None:
        fail("--card-uid is required for a card")
    if kind == "offline" and device is None:
        fail("--device is required for an offline passcode")

    async def work(platform: Platform, session: AsyncSession) -> dict[str, Any]:
        svc = CredentialService(platform, session)
        if kind == "passcode":
            cred, digits = await svc.issue_passcode(ACTOR, org, grant, passcode)
            return {"credential": _json(credential_out(cred)), "passcode": digits}
        if kind == "card" and card_uid is not None:
            cred, key = await svc.issue_card(ACTOR, org, grant, card_uid)
            return {"credential": _json(credential_out(cred)), "card_key": key.hex()}
        if kind == "ekey" and key_bytes is not None:
            cred, tokens = await svc.issue_ekey(ACTOR, org, grant, key_bytes)
            now = int(platform.clock.now().timestamp())
            cert = access_certificate(platform.keys, platform.settings.audit_origin, now)
            return {
                "credential": _json(credential_out(cred)),
                "tokens": tokens,
                "certificate": encode_signer(cert),
            }
        if kind == "offline" and device is not None:
            request = OfflineRequest(
                offline_kind,
                _aware(valid_from, "--valid-from"),
                _aware(valid_until, "--valid-until"),
            )
            cred, issued = await svc.issue_offline(ACTOR, org, grant, device, request)
            return {
                "credential": _json(credential_out(cred)),
                "offline_code": issued.code,
                "offline": _json(offline_out(issued.meta)),
            }
        if kind == "face":
            return {"credential": _json(credential_out(await svc.issue_face(ACTOR, org, grant)))}
        fail(f"--kind: passcode, card, ekey, offline or face (not {kind!r})")

    _print(_transaction(data_dir, work))
    typer.echo("仅显示一次 / shown once: it is stored nowhere.", err=True)


@credential_app.command("list")
def credential_list(grant: GrantArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
    """The grant's credentials, each with where it stands on every lock."""

    async def work(platform: Platform, session: AsyncSession) -> list[dict[str, Any]]:
        row = await GrantService(platform, session).get(org, grant)
        svc = CredentialService(platform, session)
        credentials = await svc.of_grant(row)
        offline = await svc.repo.offline_codes([c.id for c in credentials])
        out = []
        for cred in credentials:
            entry = _json(credential_out(cred, offline.get(cred.id)))
            deliveries = await svc.deliveries_of(org, cred.id)
            entry["deliveries"] = [delivery_out(d).model_dump(mode="json") for d in deliveries]
            out.append(entry)
        return out

    _print(_transaction(data_dir, work))


def _act(action: str) -> Callable[..., None]:
    def command(credential: CredentialArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
        async def work(platform: Platform, session: AsyncSession) -> dict[str, Any]:
            svc = CredentialService(platform, session)
            if action == "suspend":
                return credential_out(await svc.suspend(ACTOR, org, credential)).model_dump(
                    mode="json"
                )
            if action == "resume":
                return credential_out(await svc.resume(ACTOR, org, credential)).model_dump(
                    mode="json"
                )
            reason = "lost" if action == "lost" else "revoked"
            cred, clear = await svc.revoke_with_clear_codes(ACTOR, org, credential, reason=reason)
            out = credential_out(cred)
            out.clear_codes = clear or None
            return out.model_dump(mode="json")

        _print(_transaction(data_dir, work))

    command.__doc__ = {
        "suspend": "Take a credential off its locks for now.",
        "resume": "Put a suspended credential back on its locks.",
        "revoke": "Revoke a credential everywhere (offline codes: prints their clear codes).",
        "lost": "Report a credential lost: revoked everywhere at once.",
    }[action]
    return command


for _action in ("suspend", "resume", "revoke", "lost"):
    credential_app.command(_action)(_act(_action))


# --- offline, freezes, anomalies, sweep --------------------------------------------------
@app.command("offline-reset")
def offline_reset(
    device: Annotated[str, typer.Argument(help="Lock device id.")],
    org: OrgOption,
    data_dir: DataDirOption = None,
) -> None:
    """Advance a lock's revocation epoch: every older offline code dies (prints the clear code
    to type on the lock if it is offline). eKey tokens of that lock issued before die too."""

    async def work(platform: Platform, session: AsyncSession) -> dict[str, Any]:
        epoch, code, ended = await CredentialService(platform, session).reset_offline(
            ACTOR, org, device
        )
        return {"device_id": device, "epoch": epoch, "clear_code": code, "ended": ended}

    _print(_transaction(data_dir, work))


@app.command("freeze")
def freeze(
    subject: Annotated[str, typer.Argument(help="Pseudonymous subject id.")],
    org: OrgOption,
    reason: Annotated[str, typer.Option("--reason", help="arrears | violation | other.")],
    note: Annotated[str | None, typer.Option("--note", help="Never personal data.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Freeze a person's access at once (their offline codes are revoked)."""

    async def work(platform: Platform, session: AsyncSession) -> dict[str, Any]:
        view = await FreezeService(platform, session).freeze(ACTOR, org, subject, reason, note)
        return freeze_out(view).model_dump(mode="json")

    _print(_transaction(data_dir, work))


@app.command("unfreeze")
def unfreeze(
    freeze_id: Annotated[str, typer.Argument(help="Freeze id.")],
    org: OrgOption,
    data_dir: DataDirOption = None,
) -> None:
    """Lift a freeze (revoked offline codes stay revoked: issue new ones)."""

    async def work(platform: Platform, session: AsyncSession) -> dict[str, Any]:
        return freeze_out(
            await FreezeService(platform, session).lift(ACTOR, org, freeze_id)
        ).model_dump(mode="json")

    _print(_transaction(data_dir, work))


@app.command("anomalies")
def anomalies(
    org: OrgOption,
    kind: Annotated[
        str | None, typer.Option("--kind", help="mass_grant | odd_hours | long_grant | self_grant.")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Abnormal grants, newest first."""

    async def work(platform: Platform, session: AsyncSession) -> list[dict[str, Any]]:
        rows = await find_anomalies(session, org, kind=kind, limit=500)
        return [anomaly_out(r).model_dump(mode="json") for r in rows]

    _print(_transaction(data_dir, work))


@app.command("expire")
def expire(data_dir: DataDirOption = None) -> None:
    """Run the access sweep once: expire grants past their end, re-queue deliveries."""
    settings = settings_for(data_dir)

    async def go() -> dict[str, int]:
        async with open_platform(settings) as platform:
            result = await sweep(platform)
            return {
                "expired_grants": result.expired_grants,
                "ended_credentials": result.ended_credentials,
                "requeued": result.requeued,
            }

    _print(run(go()))
