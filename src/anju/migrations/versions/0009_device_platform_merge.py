"""Join the device-commands and gateway branches into one head.

Revision ID: 0009
Revises: 0007, 0008
"""

revision = "0009"
down_revision = ("0007", "0008")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: a merge point only."""


def downgrade() -> None:
    """Nothing to undo."""
