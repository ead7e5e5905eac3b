"""A small, strict reader of iCalendar feeds (RFC 5545) for booking imports: only VEVENTs and
only UID, DTSTART, DTEND and STATUS are read; everything else is skipped. Bounded: the caller
limits the bytes, this limits lines and events. Times without a zone are read in Asia/Shanghai;
dates (all-day events, as booking sites export them) mean arrival 14:00 and departure 12:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from anju.stays.rules import LOCAL_ZONE

MAX_EVENTS = 2000
MAX_LINE = 10_000
MAX_UID = 200
ARRIVAL = time(14, 0)
DEPARTURE = time(12, 0)


class CalendarError(ValueError):
    """The feed is not an iCalendar document anju can read (message says why, no content)."""


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    starts_at: datetime
    ends_at: datetime
    cancelled: bool


@dataclass
class ReadFeed:
    events: list[FeedEvent]
    skipped: int  # VEVENTs without a usable UID / DTSTART / DTEND


def unfold(text: str) -> list[str]:
    """Content lines with folding undone (a line starting with space or tab continues)."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw:
            lines.append(raw)
        if lines and len(lines[-1]) > MAX_LINE:
            raise CalendarError("line too long")
    return lines


def split_line(line: str) -> tuple[str, dict[str, str], str]:
    """(NAME, params, value) of one content line (quoted parameter values allowed)."""
    head, sep, value = _split_outside_quotes(line, ":")
    if not sep:
        raise CalendarError("content line without ':'")
    parts = head.split(";")
    params = {}
    for part in parts[1:]:
        key, _, val = part.partition("=")
        params[key.strip().upper()] = val.strip().strip('"')
    return parts[0].strip().upper(), params, value


def _split_outside_quotes(line: str, mark: str) -> tuple[str, str, str]:
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == mark and not quoted:
            return line[:i], mark, line[i + 1 :]
    return line, "", ""


def parse_when(params: dict[str, str], value: str, *, end: bool) -> datetime:
    """A DTSTART/DTEND value as an aware datetime."""
    value = value.strip()
    if params.get("VALUE", "").upper() == "DATE" or (len(value) == 8 and value.isdigit()):
        day = date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
        return datetime.combine(day, DEPARTURE if end else ARRIVAL, LOCAL_ZONE)
    if len(value) not in (15, 16) or value[8] != "T":
        raise CalendarError("bad date-time")
    naive = datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
    if value.endswith("Z"):
        return naive.replace(tzinfo=ZoneInfo("UTC"))
    zone = LOCAL_ZONE
    if "TZID" in params:
        try:
            zone = ZoneInfo(params["TZID"])
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError("unknown TZID") from None
    return naive.replace(tzinfo=zone)


def read_feed(text: str) -> ReadFeed:
    """The booking events of a feed (CalendarError when it is not an iCalendar)."""
    lines = unfold(text)
    if not lines or lines[0].strip().upper() != "BEGIN:VCALENDAR":
        raise CalendarError("not a VCALENDAR")
    events: list[FeedEvent] = []
    skipped = 0
    current: dict[str, tuple[dict[str, str], str]] | None = None
    depth = 0  # components nested inside a VEVENT (VALARM) are skipped
    for line in lines:
        name, params, value = split_line(line)
        if name == "BEGIN" and value.strip().upper() == "VEVENT" and current is None:
            current = {}
            continue
        if current is None:
            continue
        if name == "BEGIN":
            depth += 1
        elif name == "END" and depth:
            depth -= 1
        elif name == "END" and value.strip().upper() == "VEVENT":
            event = _event(current)
            if event is None:
                skipped += 1
            else:
                events.append(event)
                if len(events) > MAX_EVENTS:
                    raise CalendarError(f"more than {MAX_EVENTS} events")
            current = None
        elif not depth and name in ("UID", "DTSTART", "DTEND", "STATUS"):
            current[name] = (params, value)
    return ReadFeed(events, skipped)


def _event(props: dict[str, tuple[dict[str, str], str]]) -> FeedEvent | None:
    uid = props.get("UID", ({}, ""))[1].strip()
    if not uid or len(uid) > MAX_UID or "DTSTART" not in props:
        return None
    try:
        start = parse_when(*props["DTSTART"], end=False)
        if "DTEND" in props:
            end = parse_when(*props["DTEND"], end=True)
        else:
            end = start + timedelta(days=1)
    except (CalendarError, ValueError):
        return None
    if end <= start:
        return None
    status = props.get("STATUS", ({}, ""))[1].strip().upper()
    return FeedEvent(uid, start, end, status == "CANCELLED")
