"""Properties: sites, buildings, units, rooms, room locks, door groups and their doors.

Revision ID: 0018
Revises: 0017 (the lead relinks the chain at merge)
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _at(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _text(name: str, length: int, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length), nullable=nullable)


def _fk(
    table: str, column: str, target: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=f"fk_{table}_{column}_{target}",
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "property_sites",
        _text("id", 36),
        _text("org_id", 36),
        _text("kind", 16),
        _text("name", 100),
        _text("region_code", 6),
        *(_text(part, 100) for part in ("province", "city", "district", "town", "road")),
        _text("community", 100),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_property_sites"),
        _fk("property_sites", "org_id", "organisations"),
        sa.UniqueConstraint("org_id", "name", name="uq_property_sites_org_id"),
    )
    op.create_index("ix_property_sites_region_code", "property_sites", ["region_code"])

    op.create_table(
        "property_buildings",
        _text("id", 36),
        _text("org_id", 36),
        _text("site_id", 36),
        _text("name", 100),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_property_buildings"),
        _fk("property_buildings", "site_id", "property_sites"),
        sa.UniqueConstraint("site_id", "name", name="uq_property_buildings_site_id"),
    )
    op.create_index("ix_property_buildings_org_id", "property_buildings", ["org_id"])

    op.create_table(
        "property_units",
        _text("id", 36),
        _text("org_id", 36),
        _text("building_id", 36),
        _text("name", 100),
        sa.Column("floors", sa.Integer(), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_property_units"),
        _fk("property_units", "building_id", "property_buildings"),
        sa.UniqueConstraint("building_id", "name", name="uq_property_units_building_id"),
    )
    op.create_index("ix_property_units_org_id", "property_units", ["org_id"])

    op.create_table(
        "property_rooms",
        _text("id", 36),
        _text("org_id", 36),
        _text("unit_id", 36),
        _text("number", 100),
        sa.Column("floor", sa.Integer(), nullable=False),
        _text("kind", 16),
        sa.Column("capacity", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_property_rooms"),
        _fk("property_rooms", "unit_id", "property_units"),
        sa.UniqueConstraint("unit_id", "number", name="uq_property_rooms_unit_id"),
    )
    op.create_index("ix_property_rooms_org_id", "property_rooms", ["org_id"])

    op.create_table(
        "property_room_locks",
        _text("device_id", 32),
        _text("room_id", 36),
        _text("org_id", 36),
        _at("bound_at"),
        sa.PrimaryKeyConstraint("device_id", name="pk_property_room_locks"),
        _fk("property_room_locks", "device_id", "devices"),
        _fk("property_room_locks", "room_id", "property_rooms"),
    )
    op.create_index("ix_property_room_locks_room_id", "property_room_locks", ["room_id"])

    op.create_table(
        "property_door_groups",
        _text("id", 36),
        _text("org_id", 36),
        _text("scope", 16),
        _text("scope_id", 36),
        _text("name", 100),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_property_door_groups"),
        sa.UniqueConstraint("scope_id", "name", name="uq_property_door_groups_scope_id"),
    )
    op.create_index(
        "ix_property_door_groups_org_id_scope_id", "property_door_groups", ["org_id", "scope_id"]
    )

    op.create_table(
        "property_door_group_doors",
        _text("group_id", 36),
        _text("device_id", 32),
        _text("org_id", 36),
        _at("added_at"),
        sa.PrimaryKeyConstraint("group_id", "device_id", name="pk_property_door_group_doors"),
        _fk("property_door_group_doors", "group_id", "property_door_groups", "CASCADE"),
        _fk("property_door_group_doors", "device_id", "devices"),
    )
    op.create_index(
        "ix_property_door_group_doors_device_id", "property_door_group_doors", ["device_id"]
    )


def downgrade() -> None:
    op.drop_table("property_door_group_doors")
    op.drop_table("property_door_groups")
    op.drop_table("property_room_locks")
    op.drop_table("property_rooms")
    op.drop_table("property_units")
    op.drop_table("property_buildings")
    op.drop_table("property_sites")
