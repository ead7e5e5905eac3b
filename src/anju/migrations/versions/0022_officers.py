"""Officers: jurisdictions (region-code prefixes per officer account) and the append-only
record of officer queries.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "officer_jurisdictions",
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("region_prefix", sa.String(6), nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.Column("granted_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_officer_jurisdictions_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "region_prefix", name="pk_officer_jurisdictions"),
    )
    op.create_table(
        "officer_queries",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("officer", sa.String(200), nullable=False),
        sa.Column("officer_org_id", sa.String(36), nullable=True),
        sa.Column("basis_type", sa.String(32), nullable=False),
        sa.Column("case_number", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("unmask", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("refusal", sa.String(32), nullable=True),
        sa.Column("subject_ids", sa.Text(), nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_officer_queries"),
    )
    op.create_index("ix_officer_queries_at", "officer_queries", ["at"])
    op.create_index(
        "ix_officer_queries_officer_org_id_at", "officer_queries", ["officer_org_id", "at"]
    )


def downgrade() -> None:
    op.drop_table("officer_queries")
    op.drop_table("officer_jurisdictions")
