"""Audit log: entries, Merkle subtree hashes, signed checkpoints.

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = ("audit",)
depends_on = None


def upgrade() -> None:
    """Create the audit tables."""
    op.create_table(
        "audit_entries",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", name="pk_audit_entries"),
    )
    op.create_index("ix_audit_entries_org_id", "audit_entries", ["org_id"])
    op.create_index("ix_audit_entries_action", "audit_entries", ["action"])
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("node_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "node_index", name="pk_audit_nodes"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name="pk_audit_checkpoints"),
    )


def downgrade() -> None:
    """Drop the audit tables."""
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_nodes")
    op.drop_index("ix_audit_entries_action", table_name="audit_entries")
    op.drop_index("ix_audit_entries_org_id", table_name="audit_entries")
    op.drop_table("audit_entries")
