"""Gateway: device events, device sessions (instance affinity), device security flags.

Revision ID: 0008
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = ("gateway",)
depends_on = None


def _at(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "device_events",
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        _at("at"),
        _at("received_at"),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("session_id", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "event_id", name="pk_device_events"),
    )
    op.create_index("ix_device_events_org_id_at", "device_events", ["org_id", "at"])
    op.create_table(
        "device_sessions",
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("instance", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(16), nullable=False),
        _at("since"),
        sa.PrimaryKeyConstraint("device_id", name="pk_device_sessions"),
    )
    op.create_index("ix_device_sessions_instance", "device_sessions", ["instance"])
    op.create_table(
        "device_security_flags",
        sa.Column("device_id", sa.String(32), nullable=False),
        _at("suspicious_since"),
        _at("last_flagged_at"),
        sa.Column("last_reason", sa.String(64), nullable=False),
        sa.Column("times_flagged", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_device_security_flags"),
    )


def downgrade() -> None:
    op.drop_table("device_security_flags")
    op.drop_index("ix_device_sessions_instance", table_name="device_sessions")
    op.drop_table("device_sessions")
    op.drop_index("ix_device_events_org_id_at", table_name="device_events")
    op.drop_table("device_events")
