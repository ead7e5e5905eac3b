"""Join the foundation's domain branches (privacy, audit, accounts) into one head.

Later migrations revise "0005" and the history is linear again from here.

Revision ID: 0005
Revises: 0002, 0003, 0004
"""

revision = "0005"
down_revision = ("0002", "0003", "0004")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: a merge point only."""


def downgrade() -> None:
    """Nothing to undo."""
