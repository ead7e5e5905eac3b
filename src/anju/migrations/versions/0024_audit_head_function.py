"""PostgreSQL: take the audit tree lock and read the tree head in one round trip.

``anju_audit_lock_head(key)`` takes the transaction-scoped advisory lock, then reads the head
(entries, last leaf hash, latest checkpoint size). A VOLATILE PL/pgSQL function takes a fresh
snapshot for each statement in it under READ COMMITTED, so the head is read *after* the lock
was granted and includes every append committed before — what two statements did before
(docs/audit.md, "Concurrent appends"). SQLite needs no lock and has no such function.

Revision ID: 0024
Revises: 0023
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

LOCK_HEAD = """
CREATE FUNCTION anju_audit_lock_head(lock_key bigint)
RETURNS TABLE (tree_size bigint, last_leaf bytea, signed_size bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY
        SELECT coalesce(last.leaf_index + 1, 0)::bigint,
               last.leaf_hash,
               coalesce((SELECT max(c.tree_size) FROM audit_checkpoints c), 0)::bigint
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (
            SELECT e.leaf_index, e.leaf_hash FROM audit_entries e
            ORDER BY e.leaf_index DESC LIMIT 1
        ) AS last ON true;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LOCK_HEAD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION anju_audit_lock_head(bigint)")
