"""Stays: bookings, checked-in guests, visitors, booking-channel secrets, seen webhook events,
iCal feeds.

Revision ID: 0019
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0020"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stays_bookings",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("room_id", sa.String(36), nullable=False),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=False),
        sa.Column("headcount", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("external_ref", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("contact_subject", sa.String(64), nullable=False),
        sa.Column("contact_name", sa.LargeBinary(), nullable=True),
        sa.Column("contact_phone", sa.LargeBinary(), nullable=True),
        sa.Column("contact_masked", sa.Text(), nullable=False),
        sa.Column("headcount_override", sa.Boolean(), nullable=False),
        sa.Column("override_reason", sa.String(200), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("checked_in_at", TZ, nullable=True),
        sa.Column("checked_out_at", TZ, nullable=True),
        sa.Column("ended_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["room_id"], ["property_rooms.id"], name="fk_stays_bookings_room_id_property_rooms"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stays_bookings"),
        sa.UniqueConstraint("org_id", "channel", "external_ref", name="uq_stays_bookings_ref"),
    )
    op.create_index(
        "ix_stays_bookings_room_period", "stays_bookings", ["org_id", "room_id", "starts_at"]
    )
    op.create_index("ix_stays_bookings_status_starts", "stays_bookings", ["status", "starts_at"])
    op.create_table(
        "stays_guests",
        sa.Column("booking_id", sa.String(36), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(36), nullable=False),
        sa.Column("passcode_id", sa.String(36), nullable=False),
        sa.Column("ekey_id", sa.String(36), nullable=True),
        sa.Column("face_consented", sa.Boolean(), nullable=False),
        sa.Column("checked_in_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["stays_bookings.id"],
            name="fk_stays_guests_booking_id_stays_bookings",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("booking_id", "subject_id", name="pk_stays_guests"),
    )
    op.create_table(
        "stays_visitors",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("booking_id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(36), nullable=False),
        sa.Column("passcode_id", sa.String(36), nullable=False),
        sa.Column("doors", sa.String(16), nullable=False),
        sa.Column("valid_from", TZ, nullable=False),
        sa.Column("valid_until", TZ, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["stays_bookings.id"],
            name="fk_stays_visitors_booking_id_stays_bookings",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stays_visitors"),
    )
    op.create_index("ix_stays_visitors_booking", "stays_visitors", ["booking_id"])
    op.create_table(
        "stays_channel_secrets",
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("secret_wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "channel", name="pk_stays_channel_secrets"),
    )
    op.create_table(
        "stays_inbound_events",
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "channel", "event_id", name="pk_stays_inbound_events"),
    )
    op.create_table(
        "stays_ical_feeds",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("room_id", sa.String(36), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("polled_at", TZ, nullable=True),
        sa.Column("outcome", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["property_rooms.id"],
            name="fk_stays_ical_feeds_room_id_property_rooms",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stays_ical_feeds"),
        sa.UniqueConstraint("org_id", "room_id", name="uq_stays_ical_feeds_room"),
    )


def downgrade() -> None:
    for table in (
        "stays_ical_feeds",
        "stays_inbound_events",
        "stays_channel_secrets",
        "stays_visitors",
        "stays_guests",
        "stays_bookings",
    ):
        op.drop_table(table)
