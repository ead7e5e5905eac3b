"""Unlock records, alarms and their changes, webhook endpoints, deliveries and attempts.

Revision ID: 0014
Revises: 0012_biometric_challenges (the lead rewires it after 0013_access)
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "unlock_records",
        _text("id", 36),
        _text("org_id", 36, True),
        _text("device_id", 32),
        _text("event_id", 64),
        _text("place_kind", 32, True),
        _text("place_ref", 100, True),
        _text("subject", 64, True),
        _text("credential_id", 64, True),
        sa.Column("offline_serial", sa.BigInteger(), nullable=True),
        _text("method", 32),
        _text("result", 16),
        _text("reason", 64, True),
        _at("at"),
        _at("received_at"),
        sa.Column("record", sa.Text(), nullable=False),
        _text("signature", 200),
        sa.PrimaryKeyConstraint("id", name="pk_unlock_records"),
        sa.UniqueConstraint("device_id", "event_id", name="uq_unlock_records_device_id"),
    )
    op.create_index("ix_unlock_records_org_id_at", "unlock_records", ["org_id", "at"])
    op.create_index(
        "ix_unlock_records_org_id_device_id_at", "unlock_records", ["org_id", "device_id", "at"]
    )
    op.create_index(
        "ix_unlock_records_org_id_subject_at", "unlock_records", ["org_id", "subject", "at"]
    )
    op.create_index("ix_unlock_records_received_at", "unlock_records", ["received_at"])

    op.create_table(
        "alarms",
        _text("id", 36),
        _text("org_id", 36, True),
        _text("kind", 32),
        _text("source", 16),
        _text("severity", 16),
        _text("status", 16),
        _text("device_id", 32, True),
        _text("place_kind", 32, True),
        _text("place_ref", 100, True),
        _text("subject", 64, True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        _at("raised_at"),
        _at("last_raised_at"),
        _text("acknowledged_by", 200, True),
        _at("acknowledged_at", True),
        _text("acknowledge_note", 500, True),
        _text("cleared_by", 200, True),
        _at("cleared_at", True),
        _text("clear_note", 500, True),
        sa.PrimaryKeyConstraint("id", name="pk_alarms"),
    )
    op.create_index("ix_alarms_org_id_status", "alarms", ["org_id", "status"])
    op.create_index("ix_alarms_org_id_raised_at", "alarms", ["org_id", "raised_at"])
    op.create_index("ix_alarms_device_id_kind", "alarms", ["device_id", "kind"])
    op.create_table(
        "alarm_changes",
        sa.Column("id", SEQUENCE, autoincrement=True, nullable=False),
        _text("alarm_id", 36),
        _text("org_id", 36, True),
        _text("change", 16),
        _at("at"),
        sa.PrimaryKeyConstraint("id", name="pk_alarm_changes"),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
            name="fk_alarm_changes_alarm_id_alarms",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_alarm_changes_org_id_id", "alarm_changes", ["org_id", "id"])

    op.create_table(
        "webhook_endpoints",
        _text("id", 36),
        _text("org_id", 36),
        _text("url", 2000),
        sa.Column("event_types", sa.Text(), nullable=False),
        _text("description", 200),
        sa.Column("secret_wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _text("created_by", 200),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoints"),
    )
    op.create_index("ix_webhook_endpoints_org_id", "webhook_endpoints", ["org_id"])
    op.create_table(
        "webhook_deliveries",
        _text("id", 36),
        _text("endpoint_id", 36),
        _text("org_id", 36),
        _text("event_id", 36),
        _text("event_type", 64),
        sa.Column("payload", sa.Text(), nullable=False),
        _text("status", 16),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_attempt_at"),
        _at("created_at"),
        _at("delivered_at", True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        _text("last_error", 200, True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name="fk_webhook_deliveries_endpoint_id_webhook_endpoints",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_created_at",
        "webhook_deliveries",
        ["endpoint_id", "created_at"],
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", SEQUENCE, autoincrement=True, nullable=False),
        _text("delivery_id", 36),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _at("at"),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        _text("error", 200, True),
        _text("outcome", 16),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_attempts"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name="fk_webhook_attempts_delivery_id_webhook_deliveries",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_table("alarm_changes")
    op.drop_table("alarms")
    op.drop_table("unlock_records")
