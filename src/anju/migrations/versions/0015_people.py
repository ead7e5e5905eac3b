"""People: registered individuals and organisations, signed verification results, subject
access links.

Revision ID: 0015
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0016"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("org_scope", sa.String(36), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("document_type", sa.String(32), nullable=False),
        *(
            sa.Column(name, sa.LargeBinary(), nullable=True)
            for name in (
                "name",
                "document_number",
                "phone",
                "email",
                "address",
                "legal_representative",
                "document_index",
                "phone_index",
            )
        ),
        sa.Column("masked", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("registered_by", sa.String(200), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_people"),
        sa.UniqueConstraint("org_scope", "document_index", name="uq_people_org_document"),
        sa.UniqueConstraint("subject_id", name="uq_people_subject_id"),
    )
    op.create_index("ix_people_org_phone", "people", ["org_id", "phone_index"])
    op.create_table(
        "people_verifications",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("person_id", sa.String(32), nullable=True),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("checked_by", sa.String(200), nullable=False),
        sa.Column("consent_receipt_id", sa.String(64), nullable=True),
        sa.Column("face_capture_id", sa.String(32), nullable=True),
        _time("at"),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_people_verifications"),
        sa.UniqueConstraint("face_capture_id", name="uq_people_verifications_face_capture_id"),
    )
    op.create_index("ix_people_verifications_subject", "people_verifications", ["subject_id"])
    op.create_index("ix_people_verifications_person_id", "people_verifications", ["person_id"])
    op.create_table(
        "people_access_links",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("person_id", sa.String(32), nullable=False),
        sa.Column("issued_by", sa.String(200), nullable=False),
        _time("issued_at"),
        _time("expires_at"),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_people_access_links"),
        sa.UniqueConstraint("token_hash", name="uq_people_access_links_token_hash"),
    )
    op.create_index("ix_people_access_links_person_id", "people_access_links", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_people_access_links_person_id", table_name="people_access_links")
    op.drop_table("people_access_links")
    op.drop_index("ix_people_verifications_person_id", table_name="people_verifications")
    op.drop_index("ix_people_verifications_subject", table_name="people_verifications")
    op.drop_table("people_verifications")
    op.drop_index("ix_people_org_phone", table_name="people")
    op.drop_table("people")
