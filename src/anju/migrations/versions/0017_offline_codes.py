"""Offline passcodes: what the platform keeps of each (never the code): lock, epoch, serial,
kind and window.

Revision ID: 0017
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "access_offline_codes",
        sa.Column("credential_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("valid_from", TZ, nullable=False),
        sa.Column("valid_until", TZ, nullable=True),
        sa.Column("recurrence", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["access_credentials.id"],
            name="fk_access_offline_codes_credential_id_access_credentials",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_access_offline_codes_device_id_devices"
        ),
        sa.PrimaryKeyConstraint("credential_id", name="pk_access_offline_codes"),
    )
    op.create_index(
        "ix_access_offline_codes_device_id_epoch_serial",
        "access_offline_codes",
        ["device_id", "epoch", "serial"],
    )


def downgrade() -> None:
    op.drop_table("access_offline_codes")
