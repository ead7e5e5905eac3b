"""Biometrics: liveness challenges of remote face checks (single use, short-lived).

Revision ID: 0012_biometric_challenges
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_biometric_challenges"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "biometric_challenges",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("subject_id", sa.String(64), nullable=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("actions", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_biometric_challenges"),
    )
    op.create_index("ix_biometric_challenges_expires_at", "biometric_challenges", ["expires_at"])
    op.create_index("ix_biometric_challenges_actor", "biometric_challenges", ["actor"])


def downgrade() -> None:
    op.drop_index("ix_biometric_challenges_actor", table_name="biometric_challenges")
    op.drop_index("ix_biometric_challenges_expires_at", table_name="biometric_challenges")
    op.drop_table("biometric_challenges")
