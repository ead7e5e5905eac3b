"""HTTP endpoints under /api/v1/people.

Staff (bearer token of an account or API key):

- ``POST /people`` — register and verify (``people.register``: front desk, property manager);
  ``POST /people/id-card`` — the same from an ID-card reader with a 1:1 face check.
- ``POST /people/lookup`` (document or phone, blind index) and ``GET /people/{id}`` — masked
  view (``pi.read_masked``).
- ``POST /people/{id}/reveal`` — clear values for a stated purpose (``pi.read`` and a recent
  second factor: data operator); each decryption is audited with the purpose.
- ``PATCH /people/{id}`` — correct contact fields (``pi.write``: data operator).
- ``DELETE /people/{id}`` — crypto-shred on the person's verified request (``pi.write`` and a
  recent second factor).
- ``POST /people/{id}/access-links`` — a subject access link for the person
  (``people.register``).
- ``GET /people/{id}/access-trail`` — who accessed the person's data (``audit.read``: auditor).

The person (bearer token = their access link): ``GET /people/self`` (JSON export),
``GET /people/self/access-trail``, ``PATCH /people/self``, ``POST /people/self/deletion``.

Refused staff calls are audited (outcome ``denied``). Registrations call
``app.state.consent_check`` (a :data:`~anju.people.registration.ConsentCheck`) when the consent
domain has set one. A ``ctid`` registration needs an identity
provider on ``app.state.identity_provider`` (see docs/people.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status

from anju.accounts.deps import BearerToken
from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.api.deps import PlatformDep
from anju.biometrics.access import authorised
from anju.errors import InvalidInput
from anju.people.registration import ConsentCheck, Registrar
from anju.people.rights import SubjectRights, subject_actor
from anju.people.schemas import (
    CorrectionIn,
    DeletionIn,
    IdCardRegisterIn,
    LinkOut,
    LookupIn,
    LookupOut,
    PersonOut,
    RegisterIn,
    RegistrationOut,
    RevealIn,
    TrailOut,
)
from anju.people.service import Actor, PeopleService, view_of
from anju.people.verification.base import (
    Evidence,
    IdCardCheck,
    IdentityProvider,
    NetworkCheck,
    ProviderUnavailable,
    RemoteFaceCheck,
    StaffCheck,
)

PREFIX = "/api/v1/people"
#: Paths whose bodies carry images (they get the larger body limit, see anju.app).
IMAGE_PATHS = (f"{PREFIX}/id-card",)
router = APIRouter(prefix=PREFIX, tags=["people"])
PersonIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


def _actor(principal: Principal) -> Actor:
    return Actor(principal.actor, principal.org_id)


def _consent_check(request: Request) -> ConsentCheck | None:
    """The consent domain's check of a receipt, once it is wired in (``app.state``)."""
    check: ConsentCheck | None = getattr(request.app.state, "consent_check", None)
    return check


def _provider(request: Request) -> IdentityProvider:
    provider: IdentityProvider | None = getattr(request.app.state, "identity_provider", None)
    if provider is None:
        raise ProviderUnavailable(
            "未配置网络身份核验服务 / no network identity provider is configured"
        )
    return provider


@router.post("", response_model=RegistrationOut, status_code=status.HTTP_201_CREATED)
async def register(
    body: RegisterIn,
    request: Request,
    response: Response,
    token: BearerToken,
    platform: PlatformDep,
) -> RegistrationOut:
    """实名登记 / Register a person or organisation and verify their identity."""
    evidence: Evidence
    if body.method == "ctid":
        evidence = NetworkCheck(_provider(request))
    elif body.method == "online_face_check":
        if body.face_capture_id is None:
            raise InvalidInput("需要人脸核验记录 / online_face_check needs face_capture_id")
        evidence = RemoteFaceCheck(body.face_capture_id)
    else:
        evidence = StaffCheck(original_document_checked=body.original_document_checked)
    async with authorised(platform, token, Cap.PEOPLE_REGISTER, "people.register") as (s, p):
        result = await Registrar(platform, s, consent_check=_consent_check(request)).register(
            _actor(p),
            body.application(),
            evidence,
            consent_receipt_id=body.consent_receipt_id,
            subject_id=body.subject_id,
        )
    if result.outcome != "registered":
        response.status_code = status.HTTP_200_OK
    return RegistrationOut.model_validate(result.as_dict())


@router.post("/id-card", response_model=RegistrationOut, status_code=status.HTTP_201_CREATED)
async def register_id_card(
    body: IdCardRegisterIn,
    request: Request,
    response: Response,
    token: BearerToken,
    platform: PlatformDep,
) -> RegistrationOut:
    """读卡器登记 / Register from an ID-card reader: chip data + photo, 1:1 with a live capture.

    The photo and the capture are compared in memory and dropped; only the decision is kept."""
    evidence = IdCardCheck(photo=body.photo, live=body.live, device=body.device)
    async with authorised(platform, token, Cap.PEOPLE_REGISTER, "people.register") as (s, p):
        result = await Registrar(platform, s, consent_check=_consent_check(request)).register(
            _actor(p),
            body.application(),
            evidence,
            consent_receipt_id=body.consent_receipt_id,
            subject_id=body.subject_id,
        )
    if result.outcome != "registered":
        response.status_code = status.HTTP_200_OK
    return RegistrationOut.model_validate(result.as_dict())


@router.post("/lookup", response_model=LookupOut)
async def lookup(body: LookupIn, token: BearerToken, platform: PlatformDep) -> LookupOut:
    """按证件或电话查找（盲索引，脱敏）/ Find people by document or phone (blind index; masked)."""
    async with authorised(platform, token, Cap.PI_READ_MASKED, "people.lookup") as (s, p):
        service = PeopleService(platform, s)
        if body.document_type and body.document_number and body.phone is None:
            view = await service.find_by_document(
                p.org_id, body.document_type, body.document_number
            )
            views = [] if view is None else [view]
        elif body.phone and body.document_type is None and body.document_number is None:
            views = await service.find_by_phone(p.org_id, body.phone)
        else:
            raise InvalidInput(
                "请给出证件类型和号码，或电话 / give a document type and number, or a phone"
            )
    return LookupOut(people=[PersonOut.model_validate(v.as_dict()) for v in views])


@router.get("/self", response_model=None)
async def self_export(token: BearerToken, platform: PlatformDep) -> dict[str, Any]:
    """本人查阅、导出 / The person's own data, decrypted for them (JSON export)."""
    async with platform.db.transaction() as session:
        rights = SubjectRights(platform, session)
        return await rights.export(await rights.person_for_link(token))


@router.get("/self/access-trail", response_model=TrailOut)
async def self_trail(token: BearerToken, platform: PlatformDep) -> TrailOut:
    """本人查看访问记录 / Who accessed the person's data, when and on what basis."""
    async with platform.db.transaction() as session:
        rights = SubjectRights(platform, session)
        return TrailOut(entries=await rights.trail(await rights.person_for_link(token)))


@router.patch("/self", response_model=PersonOut)
async def self_correct(body: CorrectionIn, token: BearerToken, platform: PlatformDep) -> PersonOut:
    """本人更正 / The person corrects their phone, e-mail or address."""
    async with platform.db.transaction() as session:
        person = await SubjectRights(platform, session).person_for_link(token)
        await PeopleService(platform, session).correct(
            subject_actor(person), person, body.changes()
        )
        return PersonOut.model_validate(view_of(person).as_dict())


@router.post("/self/deletion", status_code=status.HTTP_204_NO_CONTENT)
async def self_delete(token: BearerToken, platform: PlatformDep) -> Response:
    """本人申请删除 / The person has their data deleted (keys destroyed at once)."""
    async with platform.db.transaction() as session:
        person = await SubjectRights(platform, session).person_for_link(token)
        await PeopleService(platform, session).delete(
            subject_actor(person), person, "subject_request"
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{person_id}", response_model=PersonOut)
async def get_person(
    person_id: PersonIdPath, token: BearerToken, platform: PlatformDep
) -> PersonOut:
    """查看（脱敏）/ A person, masked."""
    async with authorised(platform, token, Cap.PI_READ_MASKED, "people.read") as (s, p):
        person = await PeopleService(platform, s).person(person_id, p.org_id)
        return PersonOut.model_validate(view_of(person).as_dict())


@router.post("/{person_id}/reveal", response_model=dict[str, str | None])
async def reveal(
    person_id: PersonIdPath, body: RevealIn, token: BearerToken, platform: PlatformDep
) -> dict[str, str | None]:
    """按目的解密 / Clear values for a stated purpose (data operator, second factor)."""
    async with authorised(platform, token, Cap.PI_READ, "people.reveal") as (s, p):
        AccountService(platform, s).require_second_factor(p)
        return await PeopleService(platform, s).reveal(
            _actor(p), person_id, body.fields, body.purpose
        )


@router.patch("/{person_id}", response_model=PersonOut)
async def correct(
    person_id: PersonIdPath, body: CorrectionIn, token: BearerToken, platform: PlatformDep
) -> PersonOut:
    """更正 / Correct contact fields on the person's request (data operator)."""
    async with authorised(platform, token, Cap.PI_WRITE, "people.correct") as (s, p):
        service = PeopleService(platform, s)
        person = await service.person(person_id, p.org_id)
        await service.correct(_actor(p), person, body.changes())
        return PersonOut.model_validate(view_of(person).as_dict())


@router.delete("/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(
    person_id: PersonIdPath, body: DeletionIn, token: BearerToken, platform: PlatformDep
) -> Response:
    """删除（密钥销毁）/ Crypto-shred the person's data (data operator, second factor)."""
    async with authorised(platform, token, Cap.PI_WRITE, "people.delete") as (s, p):
        AccountService(platform, s).require_second_factor(p)
        service = PeopleService(platform, s)
        await service.delete(_actor(p), await service.person(person_id, p.org_id), body.reason)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{person_id}/access-links", response_model=LinkOut, status_code=201)
async def issue_link(person_id: PersonIdPath, token: BearerToken, platform: PlatformDep) -> LinkOut:
    """本人访问链接 / A short-lived link the person uses to exercise their rights."""
    async with authorised(platform, token, Cap.PEOPLE_REGISTER, "people.access_link") as (s, p):
        issued = await SubjectRights(platform, s).issue_link(_actor(p), person_id)
    return LinkOut(token=issued.token, link_id=issued.link_id, expires_at=issued.expires_at)


@router.get("/{person_id}/access-trail", response_model=TrailOut)
async def access_trail(
    person_id: PersonIdPath, token: BearerToken, platform: PlatformDep
) -> TrailOut:
    """访问记录 / Who accessed this person's data and on what basis (auditor)."""
    async with authorised(platform, token, Cap.AUDIT_READ, "people.trail") as (s, p):
        person = await PeopleService(platform, s).person(person_id, p.org_id)
        return TrailOut(entries=await SubjectRights(platform, s).trail(person))
