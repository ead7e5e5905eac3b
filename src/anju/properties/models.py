"""Tables: sites, buildings, units, rooms, room locks, door groups and their doors.

Every row carries its organisation (``org_id``) so that every query filters by it directly.
Names and addresses of places are not personal information (docs/properties.md, "Privacy").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime


class Site(Base):
    """A hotel, homestay, apartment block, public rental estate or housing estate."""

    __tablename__ = "property_sites"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        Index("ix_property_sites_region_code", "region_code"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36), ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    region_code: Mapped[str] = mapped_column(String(6))  # GB/T 2260, county level
    # 标准地址: province, city, district, street/town, road + number, community.
    province: Mapped[str] = mapped_column(String(100))
    city: Mapped[str] = mapped_column(String(100))
    district: Mapped[str] = mapped_column(String(100))
    town: Mapped[str] = mapped_column(String(100))
    road: Mapped[str] = mapped_column(String(100))
    community: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Building(Base):
    """A building (楼栋) of a site."""

    __tablename__ = "property_buildings"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    site_id: Mapped[str] = mapped_column(String(36), ForeignKey("property_sites.id"))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Unit(Base):
    """A unit (单元) of a building: one stairwell; the floor count is optional."""

    __tablename__ = "property_units"
    __table_args__ = (UniqueConstraint("building_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    building_id: Mapped[str] = mapped_column(String(36), ForeignKey("property_buildings.id"))
    name: Mapped[str] = mapped_column(String(100))
    floors: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Room(Base):
    """A room (户室) of a unit: number unique in its unit, floor, kind, capacity."""

    __tablename__ = "property_rooms"
    __table_args__ = (UniqueConstraint("unit_id", "number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    unit_id: Mapped[str] = mapped_column(String(36), ForeignKey("property_units.id"))
    number: Mapped[str] = mapped_column(String(100))
    floor: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    capacity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RoomLock(Base):
    """A lock on a door of a room; a lock belongs to one room (the primary key says so)."""

    __tablename__ = "property_room_locks"

    device_id: Mapped[str] = mapped_column(String(32), ForeignKey("devices.id"), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(36), ForeignKey("property_rooms.id"), index=True)
    org_id: Mapped[str] = mapped_column(String(36))
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DoorGroup(Base):
    """A named set of common doors (entrance, gate, lift…) of a site, building or unit."""

    __tablename__ = "property_door_groups"
    __table_args__ = (
        UniqueConstraint("scope_id", "name"),
        Index("ix_property_door_groups_org_id_scope_id", "org_id", "scope_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36))
    scope: Mapped[str] = mapped_column(String(16))  # site | building | unit
    scope_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DoorGroupDoor(Base):
    """One device of a door group."""

    __tablename__ = "property_door_group_doors"
    __table_args__ = (PrimaryKeyConstraint("group_id", "device_id"),)

    group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("property_door_groups.id", ondelete="CASCADE")
    )
    device_id: Mapped[str] = mapped_column(String(32), ForeignKey("devices.id"), index=True)
    org_id: Mapped[str] = mapped_column(String(36))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
