"""Biometrics: the face capture log and sealed face templates.

Revision ID: 0010_biometrics
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_biometrics"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "biometric_captures",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(128), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reasons", sa.String(400), nullable=False),
        sa.Column("liveness", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_biometric_captures"),
    )
    op.create_index("ix_biometric_captures_at", "biometric_captures", ["at"])
    op.create_table(
        "biometric_templates",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("template", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_biometric_templates"),
        sa.UniqueConstraint("subject_id", "version", name="uq_biometric_templates_subject_id"),
    )
    op.create_index("ix_biometric_templates_subject_id", "biometric_templates", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_biometric_templates_subject_id", table_name="biometric_templates")
    op.drop_table("biometric_templates")
    op.drop_index("ix_biometric_captures_at", table_name="biometric_captures")
    op.drop_table("biometric_captures")
