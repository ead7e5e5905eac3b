"""Leases: leases, tenants, rent instalments, payments, lease settings.

Revision ID: 0020
Revises: 0018 (leases refer to property rooms; the lead relinks the chain at merge)
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length), nullable=nullable)


def _int(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Integer(), nullable=False)


def _fen(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.BigInteger(), nullable=False)


def _date(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Date(), nullable=False)


def _lease_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["lease_id"], ["leases.id"], name=f"fk_{table}_lease_id_leases", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "leases",
        _text("id", 36),
        _text("org_id", 36),
        _text("room_id", 36),
        _text("status", 16),
        _date("start_date"),
        _date("end_date"),
        _fen("monthly_rent_fen"),
        _int("due_day"),
        _text("currency", 3),
        _int("grace_days"),
        sa.Column("in_arrears", sa.Boolean(), nullable=False),
        _text("created_by", 200),
        _at("created_at"),
        _at("updated_at"),
        _at("activated_at", True),
        _at("ended_at", True),
        _text("end_reason", 200, True),
        sa.PrimaryKeyConstraint("id", name="pk_leases"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name="fk_leases_org_id_organisations"
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["property_rooms.id"], name="fk_leases_room_id_property_rooms"
        ),
    )
    op.create_index("ix_leases_org_id_status", "leases", ["org_id", "status"])
    op.create_index("ix_leases_room_id_status", "leases", ["room_id", "status"])

    op.create_table(
        "lease_tenants",
        _text("lease_id", 36),
        _text("subject_id", 64),
        _text("grant_id", 36, True),
        _text("freeze_id", 36, True),
        sa.PrimaryKeyConstraint("lease_id", "subject_id", name="pk_lease_tenants"),
        _lease_fk("lease_tenants"),
    )
    op.create_index("ix_lease_tenants_subject_id", "lease_tenants", ["subject_id"])

    op.create_table(
        "lease_instalments",
        _text("id", 36),
        _text("lease_id", 36),
        _int("seq"),
        _date("period_start"),
        _date("period_end"),
        _date("due_date"),
        _fen("amount_fen"),
        _fen("paid_fen"),
        sa.PrimaryKeyConstraint("id", name="pk_lease_instalments"),
        _lease_fk("lease_instalments"),
        sa.UniqueConstraint("lease_id", "seq", name="uq_lease_instalments_lease_id"),
    )
    op.create_index("ix_lease_instalments_due_date", "lease_instalments", ["due_date"])

    op.create_table(
        "lease_payments",
        _text("id", 36),
        _text("lease_id", 36),
        _text("org_id", 36),
        _text("idempotency_key", 64),
        _fen("amount_fen"),
        _at("paid_at"),
        _text("reference", 100),
        _text("recorded_by", 200),
        _at("recorded_at"),
        sa.PrimaryKeyConstraint("id", name="pk_lease_payments"),
        _lease_fk("lease_payments"),
        sa.UniqueConstraint("lease_id", "idempotency_key", name="uq_lease_payments_lease_id"),
    )

    op.create_table(
        "lease_settings",
        _text("org_id", 36),
        _int("grace_days"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("org_id", name="pk_lease_settings"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name="fk_lease_settings_org_id_organisations"
        ),
    )


def downgrade() -> None:
    op.drop_table("lease_settings")
    op.drop_table("lease_payments")
    op.drop_table("lease_instalments")
    op.drop_table("lease_tenants")
    op.drop_table("leases")
