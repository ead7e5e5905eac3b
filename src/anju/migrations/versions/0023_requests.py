"""Tenants' requests (text sealed under the person's key), their timeline, staff activities.

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenant_requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("person_id", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("place_ref", sa.String(100), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee_id", sa.String(36), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_requests"),
    )
    op.create_index("ix_tenant_requests_org_id_status", "tenant_requests", ["org_id", "status"])
    op.create_index("ix_tenant_requests_person_id", "tenant_requests", ["person_id"])
    op.create_table(
        "tenant_request_changes",
        sa.Column("id", SEQUENCE, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("assignee_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["tenant_requests.id"],
            name="fk_tenant_request_changes_request_id_tenant_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_request_changes"),
    )
    op.create_index(
        "ix_tenant_request_changes_request_id_id", "tenant_request_changes", ["request_id", "id"]
    )
    op.create_table(
        "staff_activities",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("access_subject", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("device_ids", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(32), nullable=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("ended_at", TZ, nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_activities"),
    )
    op.create_index(
        "ix_staff_activities_org_id_started_at", "staff_activities", ["org_id", "started_at"]
    )


def downgrade() -> None:
    op.drop_table("staff_activities")
    op.drop_table("tenant_request_changes")
    op.drop_table("tenant_requests")
