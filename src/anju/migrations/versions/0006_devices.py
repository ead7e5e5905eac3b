"""Devices: products, devices, device operation records, dynamic-registration nonces.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "device_products",
        sa.Column("product_key", sa.String(64), nullable=False),
        sa.Column("device_type", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("dynamic_registration", sa.Boolean(), nullable=False),
        sa.Column("product_secret_wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        _at("failure_window_start", nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("product_key", name="pk_device_products"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("device_type", sa.String(32), nullable=False),
        sa.Column("product_key", sa.String(64), nullable=False),
        sa.Column("se_id", sa.String(32), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provisioning", sa.String(16), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("place_kind", sa.String(32), nullable=True),
        sa.Column("place_ref", sa.String(100), nullable=True),
        sa.Column("certificate", sa.LargeBinary(), nullable=False),
        sa.Column("cert_serial", sa.String(32), nullable=False),
        _at("cert_not_after"),
        sa.Column("root_key_wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("claim_failures", sa.Integer(), nullable=False),
        sa.Column("firmware_version", sa.String(64), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("battery_pct", sa.Integer(), nullable=True),
        sa.Column("signal_dbm", sa.Integer(), nullable=True),
        _at("last_seen_at", nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("reported", sa.Text(), nullable=False),
        _at("registered_at", nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.UniqueConstraint("se_id", name="uq_devices_se_id"),
        sa.UniqueConstraint("cert_serial", name="uq_devices_cert_serial"),
        sa.UniqueConstraint("org_id", "place_kind", "place_ref", name="uq_devices_org_id"),
        sa.ForeignKeyConstraint(
            ["product_key"],
            ["device_products.product_key"],
            name="fk_devices_product_key_device_products",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name="fk_devices_org_id_organisations"
        ),
    )
    op.create_index("ix_devices_product_key", "devices", ["product_key"])
    op.create_index("ix_devices_status", "devices", ["status"])
    op.create_index("ix_devices_org_id", "devices", ["org_id"])
    op.create_table(
        "device_operations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        _at("at"),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_device_operations"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_device_operations_device_id_devices",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_device_operations_device_id", "device_operations", ["device_id"])
    op.create_table(
        "device_registration_nonces",
        sa.Column("product_key", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        _at("seen_at"),
        sa.PrimaryKeyConstraint("product_key", "nonce", name="pk_device_registration_nonces"),
    )
    op.create_index(
        "ix_device_registration_nonces_seen_at", "device_registration_nonces", ["seen_at"]
    )


def downgrade() -> None:
    op.drop_table("device_registration_nonces")
    op.drop_table("device_operations")
    op.drop_table("devices")
    op.drop_table("device_products")
