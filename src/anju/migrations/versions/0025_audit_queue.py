"""Audit queue: entries committed with their change, appended to the tree by the sequencer.

PostgreSQL also gets ``anju_audit_try_lock_head(key)``: :func:`anju_audit_lock_head` (0024)
without the wait — when another transaction holds the tree lock it returns ``locked = false``
at once and the caller queues its entries instead of waiting in line.

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


TRY_LOCK_HEAD = """
CREATE FUNCTION anju_audit_try_lock_head(lock_key bigint)
RETURNS TABLE (locked boolean, tree_size bigint, last_leaf bytea, signed_size bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(lock_key) THEN
        RETURN QUERY SELECT false, NULL::bigint, NULL::bytea, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT true, head.tree_size, head.last_leaf, head.signed_size
        FROM anju_audit_lock_head(lock_key) AS head;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TRY_LOCK_HEAD)
    op.create_table(
        "audit_queue",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_queue"),
    )


def downgrade() -> None:
    op.drop_table("audit_queue")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION anju_audit_try_lock_head(bigint)")
