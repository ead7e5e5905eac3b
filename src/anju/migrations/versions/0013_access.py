"""Access control: grants, credentials, per-lock deliveries, lock operations and revocation
state, freezes, anomalies.

Revision ID: 0013
Revises: 0012_biometric_challenges
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012_biometric_challenges"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "access_grants",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("person_type", sa.String(16), nullable=False),
        sa.Column("selector", sa.Text(), nullable=False),
        sa.Column("device_ids", sa.Text(), nullable=False),
        sa.Column("valid_from", TZ, nullable=False),
        sa.Column("valid_until", TZ, nullable=True),
        sa.Column("schedule", sa.Text(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("ended_at", TZ, nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_grants"),
    )
    op.create_index("ix_access_grants_org_id", "access_grants", ["org_id"])
    op.create_index("ix_access_grants_status", "access_grants", ["status"])
    op.create_index("ix_access_grants_valid_until", "access_grants", ["valid_until"])
    op.create_index("ix_access_grants_org_id_subject_id", "access_grants", ["org_id", "subject_id"])
    op.create_table(
        "access_credentials",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("grant_id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("card_uid", sa.String(20), nullable=True),
        sa.Column("holder_key", sa.LargeBinary(), nullable=True),
        sa.Column("replaces", sa.String(36), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("ended_at", TZ, nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["access_grants.id"],
            name="fk_access_credentials_grant_id_access_grants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_access_credentials"),
    )
    for column in ("grant_id", "org_id", "subject_id", "status"):
        op.create_index(f"ix_access_credentials_{column}", "access_credentials", [column])
    op.create_table(
        "access_deliveries",
        sa.Column("credential_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("command_id", sa.String(36), nullable=True),
        sa.Column("box", sa.Text(), nullable=True),
        sa.Column("passcode_digest", sa.String(64), nullable=True),
        sa.Column("queued_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("confirmed_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["access_credentials.id"],
            name="fk_access_deliveries_credential_id_access_credentials",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_access_deliveries_device_id_devices"
        ),
        sa.PrimaryKeyConstraint("credential_id", "device_id", name="pk_access_deliveries"),
    )
    for column in ("device_id", "state", "command_id"):
        op.create_index(f"ix_access_deliveries_{column}", "access_deliveries", [column])
    op.create_index(
        "ix_access_deliveries_device_id_digest",
        "access_deliveries",
        ["device_id", "passcode_digest"],
    )
    op.create_table(
        "access_lock_operations",
        sa.Column("command_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=True),
        sa.Column("freeze_id", sa.String(36), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("confirmed_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_access_lock_operations_device_id_devices"
        ),
        sa.PrimaryKeyConstraint("command_id", name="pk_access_lock_operations"),
    )
    op.create_index("ix_access_lock_operations_device_id", "access_lock_operations", ["device_id"])
    op.create_index("ix_access_lock_operations_freeze_id", "access_lock_operations", ["freeze_id"])
    op.create_table(
        "access_lock_states",
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("revoked_ekeys", sa.Text(), nullable=False),
        sa.Column("offline_serial", sa.Integer(), nullable=False),
        sa.Column("revoked_serials", sa.Text(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_access_lock_states_device_id_devices"
        ),
        sa.PrimaryKeyConstraint("device_id", name="pk_access_lock_states"),
    )
    op.create_table(
        "access_freezes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("frozen_by", sa.String(200), nullable=False),
        sa.Column("frozen_at", TZ, nullable=False),
        sa.Column("lifted_by", sa.String(200), nullable=True),
        sa.Column("lifted_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_freezes"),
    )
    op.create_index("ix_access_freezes_status", "access_freezes", ["status"])
    op.create_index(
        "ix_access_freezes_org_id_subject_id", "access_freezes", ["org_id", "subject_id"]
    )
    op.create_table(
        "access_anomalies",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("grant_id", sa.String(36), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_access_anomalies"),
    )
    op.create_index("ix_access_anomalies_org_id", "access_anomalies", ["org_id"])
    op.create_index("ix_access_anomalies_at", "access_anomalies", ["at"])


def downgrade() -> None:
    for table in (
        "access_anomalies",
        "access_freezes",
        "access_lock_states",
        "access_lock_operations",
        "access_deliveries",
        "access_credentials",
        "access_grants",
    ):
        op.drop_table(table)
