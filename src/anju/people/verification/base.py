"""What a verification provider is asked and answers, and the evidence a registration brings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from anju.errors import AnjuError, InvalidInput


class ProviderUnavailable(AnjuError):
    """The identity provider could not be reached or answered with an error (retry later)."""

    status, code = 503, "verification_provider_unavailable"


class ProviderAnswerInvalid(AnjuError):
    """The identity provider's answer did not authenticate (bad signature, wrong request)."""

    status, code = 502, "verification_provider_invalid"


class OriginalNotChecked(InvalidInput):
    code = "original_document_not_checked"


class FaceCheckUnusable(InvalidInput):
    """The remote face check named is unknown, not this caller's, stale, without a passed
    liveness check, not a document check, or already used for a registration."""

    code = "face_check_unusable"


@dataclass(frozen=True)
class IdentityClaim:
    """Who a person says they are. PI: its repr shows no value."""

    document_type: str
    document_number: str = field(repr=False)
    name: str = field(repr=False)


@dataclass(frozen=True)
class ProviderResult:
    """A provider's answer: ``verified`` or ``rejected``, with its own reference (no PI)."""

    outcome: str
    provider: str
    reference: str
    reason: str = ""

    @property
    def verified(self) -> bool:
        return self.outcome == "verified"


class IdentityProvider(Protocol):
    """A network identity service that says whether a claimed identity exists and matches."""

    @property
    def name(self) -> str: ...

    async def verify(self, claim: IdentityClaim) -> ProviderResult: ...


@dataclass(frozen=True)
class NetworkCheck:
    """Evidence: ask a network identity provider (CTID-style)."""

    provider: IdentityProvider

    method = "ctid"


@dataclass(frozen=True)
class IdCardCheck:
    """Evidence: an ID-card reader read the chip (the document data the application carries)
    and its photo; a live capture is compared with that photo 1:1. Both images are used in
    memory only and dropped once the comparison is done."""

    photo: bytes = field(repr=False)
    live: bytes = field(repr=False)
    device: str = "id-card-reader"

    method = "id_card_reader"


@dataclass(frozen=True)
class RemoteFaceCheck:
    """Evidence for online registration (N2): a remote document check the same caller made just
    before (``POST /api/v1/biometrics/document-checks``: the ID photo against live frames that
    answered a liveness challenge), named by its capture id. Usable once, for 10 minutes."""

    capture_id: str

    method = "online_face_check"


@dataclass(frozen=True)
class StaffCheck:
    """Evidence: a staff member checked the original document in person (offline)."""

    original_document_checked: bool

    method = "staff_offline"


Evidence = NetworkCheck | IdCardCheck | RemoteFaceCheck | StaffCheck
