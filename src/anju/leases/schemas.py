"""HTTP and CLI shapes of leases (pydantic). Money in integer fen; dates are local dates in
Asia/Shanghai; ``paid_at`` must carry a UTC offset."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from anju.leases.models import Instalment, Lease, Payment
from anju.leases.rules import CURRENCY, MAX_TENANTS
from anju.leases.service import LeaseTerms, LeaseView, PaymentIn

Subject = Annotated[str, Field(min_length=1, max_length=64)]
Token = Annotated[str, Field(min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeaseIn(Strict):
    room_id: Annotated[str, Field(min_length=1, max_length=36)]
    tenants: Annotated[list[Subject], Field(min_length=1, max_length=MAX_TENANTS)]
    start_date: date
    end_date: date
    monthly_rent_fen: int
    due_day: int
    grace_days: int | None = None
    currency: Annotated[str, Field(max_length=3)] = CURRENCY

    def terms(self) -> LeaseTerms:
        return LeaseTerms(
            room_id=self.room_id,
            tenants=tuple(self.tenants),
            start_date=self.start_date,
            end_date=self.end_date,
            monthly_rent_fen=self.monthly_rent_fen,
            due_day=self.due_day,
            grace_days=self.grace_days,
            currency=self.currency,
        )


class PaymentBody(Strict):
    amount_fen: int
    paid_at: AwareDatetime
    reference: Token
    idempotency_key: Token

    def payment(self) -> PaymentIn:
        return PaymentIn(self.amount_fen, self.paid_at, self.reference, self.idempotency_key)


class TerminateIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class GraceIn(Strict):
    grace_days: int


class InstalmentOut(BaseModel):
    seq: int
    period_start: date
    period_end: date
    due_date: date
    amount_fen: int
    paid_fen: int


class PaymentOut(BaseModel):
    id: str
    amount_fen: int
    paid_at: datetime
    reference: str
    idempotency_key: str
    recorded_at: datetime
    replayed: bool = False


class TenantOut(BaseModel):
    subject_id: str
    grant_id: str | None
    frozen: bool


class LeaseSummaryOut(BaseModel):
    id: str
    room_id: str
    status: str
    start_date: date
    end_date: date
    monthly_rent_fen: int
    due_day: int
    currency: str
    grace_days: int
    in_arrears: bool
    created_at: datetime
    ended_at: datetime | None
    end_reason: str | None


class LeaseOut(LeaseSummaryOut):
    tenants: list[TenantOut]
    instalments: list[InstalmentOut]
    payments: list[PaymentOut]
    outstanding_fen: int


def lease_summary(lease: Lease) -> LeaseSummaryOut:
    return LeaseSummaryOut(
        id=lease.id,
        room_id=lease.room_id,
        status=lease.status,
        start_date=lease.start_date,
        end_date=lease.end_date,
        monthly_rent_fen=lease.monthly_rent_fen,
        due_day=lease.due_day,
        currency=lease.currency,
        grace_days=lease.grace_days,
        in_arrears=lease.in_arrears,
        created_at=lease.created_at,
        ended_at=lease.ended_at,
        end_reason=lease.end_reason,
    )


def instalment_out(i: Instalment) -> InstalmentOut:
    return InstalmentOut(
        seq=i.seq,
        period_start=i.period_start,
        period_end=i.period_end,
        due_date=i.due_date,
        amount_fen=i.amount_fen,
        paid_fen=i.paid_fen,
    )


def payment_out(p: Payment, replayed: bool = False) -> PaymentOut:
    return PaymentOut(
        id=p.id,
        amount_fen=p.amount_fen,
        paid_at=p.paid_at,
        reference=p.reference,
        idempotency_key=p.idempotency_key,
        recorded_at=p.recorded_at,
        replayed=replayed,
    )


def lease_out(view: LeaseView) -> LeaseOut:
    return LeaseOut(
        **lease_summary(view.lease).model_dump(),
        tenants=[
            TenantOut(subject_id=t.subject_id, grant_id=t.grant_id, frozen=t.freeze_id is not None)
            for t in view.tenants
        ],
        instalments=[instalment_out(i) for i in view.instalments],
        payments=[payment_out(p) for p in view.payments],
        outstanding_fen=view.outstanding_fen,
    )
