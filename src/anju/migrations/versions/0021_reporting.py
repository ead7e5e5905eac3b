"""Regulator reporting: the report outbox, its attempts, and unlock records already reported.

Revision ID: 0021
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "regulator_reports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("stay_id", sa.String(64), nullable=True),
        sa.Column("subject_id", sa.String(64), nullable=True),
        sa.Column("room_id", sa.String(64), nullable=True),
        sa.Column("occurred_at", TZ, nullable=True),
        sa.Column("window_since", TZ, nullable=True),
        sa.Column("window_until", TZ, nullable=True),
        sa.Column("unlock_ids", sa.Text(), nullable=True),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_regulator_reports"),
        sa.UniqueConstraint("dedup_key", name="uq_regulator_reports_dedup_key"),
    )
    op.create_index(
        "ix_regulator_reports_status_next_attempt_at",
        "regulator_reports",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_regulator_reports_org_id_created_at", "regulator_reports", ["org_id", "created_at"]
    )
    op.create_table(
        "regulator_report_attempts",
        sa.Column("id", SEQUENCE, autoincrement=True, nullable=False),
        sa.Column("report_id", sa.String(36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_regulator_report_attempts"),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["regulator_reports.id"],
            name="fk_regulator_report_attempts_report_id_regulator_reports",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_regulator_report_attempts_report_id", "regulator_report_attempts", ["report_id"]
    )
    op.create_table(
        "regulator_reported_unlocks",
        sa.Column("unlock_id", sa.String(36), nullable=False),
        sa.Column("report_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("unlock_id", name="pk_regulator_reported_unlocks"),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["regulator_reports.id"],
            name="fk_regulator_reported_unlocks_report_id_regulator_reports",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_regulator_reported_unlocks_report_id", "regulator_reported_unlocks", ["report_id"]
    )


def downgrade() -> None:
    op.drop_table("regulator_reported_unlocks")
    op.drop_table("regulator_report_attempts")
    op.drop_table("regulator_reports")
