"""Base revision: the root every domain's first migration branches from.

Revision ID: 0001
Revises:
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: domain branches (privacy, audit, accounts) create their own tables."""


def downgrade() -> None:
    """Nothing to undo."""
