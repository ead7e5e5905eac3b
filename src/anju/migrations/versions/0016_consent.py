"""Notice and consent, retention: notices, consent events, retention anchors and runs.

Revision ID: 0016
Revises: 0012_biometric_challenges
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_notices",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title_zh", sa.String(200), nullable=False),
        sa.Column("title_en", sa.String(200), nullable=False),
        sa.Column("text_zh", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_consent_notices"),
        sa.UniqueConstraint("org_id", "kind", "version", name="uq_consent_notices_org_id"),
    )
    op.create_table(
        "consent_events",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("notice_id", sa.String(32), nullable=False),
        sa.Column("notice_kind", sa.String(32), nullable=False),
        sa.Column("notice_version", sa.Integer(), nullable=False),
        sa.Column("notice_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("separate", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_consent_events"),
        sa.UniqueConstraint("org_id", "subject_id", "seq", name="uq_consent_events_seq"),
    )
    op.create_index(
        "ix_consent_events_subject",
        "consent_events",
        ["org_id", "subject_id", "notice_kind", "purpose"],
    )
    op.create_index("ix_consent_events_subject_id", "consent_events", ["subject_id"])
    op.create_table(
        "retention_anchors",
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("anchor", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "anchor", name="pk_retention_anchors"),
    )
    op.create_index("ix_retention_anchors_due", "retention_anchors", ["anchor", "at"])
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retention_runs"),
    )
    op.create_index("ix_retention_runs_started_at", "retention_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_retention_runs_started_at", table_name="retention_runs")
    op.drop_table("retention_runs")
    op.drop_index("ix_retention_anchors_due", table_name="retention_anchors")
    op.drop_table("retention_anchors")
    op.drop_index("ix_consent_events_subject_id", table_name="consent_events")
    op.drop_index("ix_consent_events_subject", table_name="consent_events")
    op.drop_table("consent_events")
    op.drop_table("consent_notices")
