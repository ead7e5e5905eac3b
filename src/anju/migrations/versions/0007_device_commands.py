"""Device commands: the store-and-forward outbox (platform → device).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = ("device_commands",)
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "device_commands",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("sent_at", nullable=True),
        _at("acked_at", nullable=True),
        _at("finished_at", nullable=True),
        sa.Column("result_code", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_device_commands"),
        sa.UniqueConstraint("device_id", "seq", name="uq_device_commands_device_id"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_device_commands_device_id_devices",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_device_commands_status_expires_at", "device_commands", ["status", "expires_at"]
    )


def downgrade() -> None:
    op.drop_table("device_commands")
