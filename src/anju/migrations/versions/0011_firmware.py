"""Firmware updates: packages, staged rollouts, per-device rollout states.

Revision ID: 0011
Revises: 0010_biometrics
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010_biometrics"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "firmware_packages",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("product_key", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("version_key", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sm3", sa.String(64), nullable=False),
        sa.Column("min_from", sa.String(32), nullable=True),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("signer_certificate", sa.LargeBinary(), nullable=False),
        sa.Column("signer", sa.String(64), nullable=False),
        _at("signer_not_after"),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        _at("created_at"),
        sa.Column("uploaded_by", sa.String(200), nullable=False),
        _at("uploaded_at"),
        sa.PrimaryKeyConstraint("id", name="pk_firmware_packages"),
        sa.UniqueConstraint("product_key", "version_key", name="uq_firmware_packages_product_key"),
        sa.ForeignKeyConstraint(
            ["product_key"],
            ["device_products.product_key"],
            name="fk_firmware_packages_product_key_device_products",
        ),
    )
    op.create_table(
        "firmware_rollouts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("package_id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stages", sa.Text(), nullable=False),
        sa.Column("current_stage", sa.Integer(), nullable=False),
        sa.Column("success_threshold_pct", sa.Integer(), nullable=False),
        sa.Column("failure_threshold_pct", sa.Integer(), nullable=False),
        sa.Column("accepted_failures", sa.Integer(), nullable=False),
        sa.Column("command_ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("selector", sa.Text(), nullable=False),
        sa.Column("paused_reason", sa.String(32), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _at("started_at", nullable=True),
        _at("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_firmware_rollouts"),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["firmware_packages.id"],
            name="fk_firmware_rollouts_package_id_firmware_packages",
        ),
    )
    op.create_index("ix_firmware_rollouts_package_id", "firmware_rollouts", ["package_id"])
    op.create_index("ix_firmware_rollouts_org_id", "firmware_rollouts", ["org_id"])
    op.create_index("ix_firmware_rollouts_status", "firmware_rollouts", ["status"])
    op.create_table(
        "firmware_rollout_devices",
        sa.Column("rollout_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("command_id", sa.String(36), nullable=True),
        sa.Column("from_version", sa.String(64), nullable=True),
        _at("sent_at", nullable=True),
        _at("updated_at"),
        _at("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("rollout_id", "device_id", name="pk_firmware_rollout_devices"),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["firmware_rollouts.id"],
            name="fk_firmware_rollout_devices_rollout_id_firmware_rollouts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_firmware_rollout_devices_device_id_devices",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_firmware_rollout_devices_device_id", "firmware_rollout_devices", ["device_id"]
    )
    op.create_index(
        "ix_firmware_rollout_devices_rollout_id_state",
        "firmware_rollout_devices",
        ["rollout_id", "state"],
    )


def downgrade() -> None:
    op.drop_table("firmware_rollout_devices")
    op.drop_table("firmware_rollouts")
    op.drop_table("firmware_packages")
