"""Privacy: subjects' wrapped data keys and master-key check rows.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = ("privacy",)
depends_on = None


def upgrade() -> None:
    """Create the privacy tables."""
    op.create_table(
        "privacy_subject_keys",
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("master_version", sa.Integer(), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shredded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("subject_id", "generation", name="pk_privacy_subject_keys"),
    )
    op.create_index(
        "ix_privacy_subject_keys_master_version", "privacy_subject_keys", ["master_version"]
    )
    op.create_table(
        "privacy_key_checks",
        sa.Column("master_version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("wrapped_check", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("master_version", name="pk_privacy_key_checks"),
    )


def downgrade() -> None:
    """Drop the privacy tables (destroys every subject data key: all PI becomes unreadable)."""
    op.drop_table("privacy_key_checks")
    op.drop_index("ix_privacy_subject_keys_master_version", table_name="privacy_subject_keys")
    op.drop_table("privacy_subject_keys")
