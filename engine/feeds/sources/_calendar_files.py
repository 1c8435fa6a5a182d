"""Calendar files: scheduled events from our YAML format or an iCalendar (``.ics``) text.

YAML (see ``calendars/example_macro.yaml``)::

    timezone: America/New_York     # zone of times written without an offset (default UTC)
    known_ahead: 30d               # optional: each event counts as known this long before it
    events:
      - {name: FOMC rate decision, kind: fomc, time: "2024-01-31 14:00", importance: 3}
      - {name: Bitcoin halving, kind: halving, time: "2024-04-20T00:09Z", known_from: "2023-01-01"}
      - {name: CPI, kind: cpi, time: "2025-10-15 08:30", cancelled: true}

iCalendar: each ``VEVENT``'s ``DTSTART`` (UTC ``Z``, ``TZID=``, floating in the file's zone, or an
all-day ``VALUE=DATE`` at 00:00), ``SUMMARY`` (name), ``CATEGORIES`` (kind), ``X-IMPORTANCE`` or
``PRIORITY`` (RFC 5545: 1-4 high, 5 medium, 6-9 low), ``STATUS:CANCELLED`` and an optional
``X-KNOWN-FROM``. Recurrence rules (``RRULE``) are not expanded: write each occurrence.

Problems are reported as ``file:line:col: message`` (YAML) or ``file:line: message`` (iCalendar).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dsl.timeframes import parse_duration
from engine.config._yaml import YamlNode, parse_yaml
from engine.feeds.observations import NS_PER_SECOND

__all__ = ["CalendarEvent", "CalendarFileError", "parse_calendar", "parse_ics", "parse_yaml_calendar"]


class CalendarFileError(ValueError):
    """A calendar that cannot be read; ``problems`` are ``where: message`` lines."""

    def __init__(self, problems: list[str]):
        super().__init__(
            "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        )
        self.problems = problems


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    name: str
    kind: str
    time_ns: int
    importance: float  # 1 low .. 3 high; 0 when cancelled
    known_from_ns: int | None = None


def _parse_time(text: str, zone: ZoneInfo) -> int:
    """ISO 8601 (``2024-01-31 14:00``, ``...T14:00Z``, ``...+01:00``, or a date) -> ns; naive = ``zone``."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        parsed = datetime.combine(date.fromisoformat(raw), time(0, 0))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return int(parsed.timestamp()) * NS_PER_SECOND


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{name}'") from None


def parse_yaml_calendar(text: str, display: str) -> list[CalendarEvent]:
    document = parse_yaml(text, display)
    if document.diagnostics:
        raise CalendarFileError([d.headline() for d in document.diagnostics])
    root = document.root
    if root is None or root.kind != "map" or root.get("events") is None:
        raise CalendarFileError([f"{display}:1:1: a calendar needs an 'events:' list"])
    problems: list[str] = []

    def where(node: YamlNode) -> str:
        return f"{display}:{node.line}:{node.col}"

    try:
        zone_node = root.get("timezone")
        zone = _zone(None if zone_node is None else str(zone_node.value))
    except ValueError as exc:
        raise CalendarFileError([f"{where(root.get('timezone') or root)}: {exc}"]) from None
    ahead_node = root.get("known_ahead")
    ahead_ns: int | None = None
    if ahead_node is not None:
        try:
            ahead_ns = parse_duration(str(ahead_node.value)) * NS_PER_SECOND
        except ValueError as exc:
            problems.append(f"{where(ahead_node)}: known_ahead: {exc}")
    events_node = root.get("events")
    assert events_node is not None
    if events_node.kind != "seq":
        raise CalendarFileError([f"{where(events_node)}: 'events' must be a list"])
    events: list[CalendarEvent] = []
    for node in events_node.children:
        try:
            events.append(_yaml_event(node, zone, ahead_ns))
        except ValueError as exc:
            problems.append(f"{where(node)}: {exc}")
    if problems:
        raise CalendarFileError(problems)
    return events


_EVENT_KEYS = {"name", "kind", "time", "importance", "known_from", "known_ahead", "cancelled", "note"}


def _yaml_event(node: YamlNode, zone: ZoneInfo, ahead_ns: int | None) -> CalendarEvent:
    if node.kind != "map":
        raise ValueError("an event is a mapping with at least name and time")
    data = node.to_python()
    unknown = sorted(set(data) - _EVENT_KEYS)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)} (an event takes: {', '.join(sorted(_EVENT_KEYS))})"
        )
    if not data.get("name") or not data.get("time"):
        raise ValueError("an event needs 'name' and 'time'")
    try:
        when = _parse_time(str(data["time"]), zone)
    except ValueError:
        raise ValueError(f"time '{data['time']}' is not an ISO 8601 date or time") from None
    importance = data.get("importance", 1)
    if isinstance(importance, bool) or not isinstance(importance, int | float) or not 1 <= importance <= 3:
        raise ValueError(f"importance must be 1, 2 or 3 (got {importance!r})")
    known: int | None = None
    if data.get("known_from") is not None:
        try:
            known = _parse_time(str(data["known_from"]), zone)
        except ValueError:
            raise ValueError(f"known_from '{data['known_from']}' is not an ISO 8601 date or time") from None
    elif data.get("known_ahead") is not None:
        known = when - parse_duration(str(data["known_ahead"])) * NS_PER_SECOND
    elif ahead_ns is not None:
        known = when - ahead_ns
    cancelled = bool(data.get("cancelled", False))
    return CalendarEvent(
        str(data["name"]), str(data.get("kind") or ""), when, 0.0 if cancelled else float(importance), known
    )


def _unfold(text: str) -> list[tuple[int, str]]:
    """Content lines with their first physical line number (RFC 5545 folding: a leading space/tab)."""
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] = (lines[-1][0], lines[-1][1] + raw[1:])
        elif raw.strip():
            lines.append((number, raw))
    return lines


def _ics_time(value: str, params: dict[str, str], zone: ZoneInfo) -> int:
    if params.get("VALUE") == "DATE" or len(value) == 8:
        day = datetime.strptime(value[:8], "%Y%m%d").replace(
            tzinfo=_zone(params.get("TZID")) if "TZID" in params else zone
        )
        return int(day.timestamp()) * NS_PER_SECOND
    stamp = datetime.strptime(value.rstrip("Zz"), "%Y%m%dT%H%M%S")
    if value.endswith(("Z", "z")):
        stamp = stamp.replace(tzinfo=UTC)
    else:
        stamp = stamp.replace(tzinfo=_zone(params["TZID"]) if "TZID" in params else zone)
    return int(stamp.timestamp()) * NS_PER_SECOND


def _unescape(value: str) -> str:
    return (
        value.replace("\\n", " ")
        .replace("\\N", " ")
        .replace("\\,", ",")
        .replace("\\;", ";")
        .replace("\\\\", "\\")
    )


def _importance(fields: dict[str, str]) -> float:
    if "X-IMPORTANCE" in fields:
        value = float(fields["X-IMPORTANCE"])
        if not 1 <= value <= 3:
            raise ValueError(f"X-IMPORTANCE must be 1, 2 or 3 (got {fields['X-IMPORTANCE']})")
        return value
    priority = int(fields.get("PRIORITY", "0") or 0)
    return 3.0 if 1 <= priority <= 4 else 2.0 if priority == 5 else 1.0


def parse_ics(text: str, display: str, default_zone: str | None = None) -> list[CalendarEvent]:
    zone = _zone(default_zone)
    events: list[CalendarEvent] = []
    problems: list[str] = []
    current: dict[str, tuple[str, dict[str, str]]] | None = None
    start_line = 0
    for number, line in _unfold(text):
        name_part, _, value = line.partition(":")
        name, *raw_params = name_part.split(";")
        name = name.upper()
        params = {k.upper(): v.strip('"') for k, _, v in (p.partition("=") for p in raw_params)}
        if name == "BEGIN" and value.upper() == "VEVENT":
            current, start_line = {}, number
        elif name == "END" and value.upper() == "VEVENT" and current is not None:
            try:
                events.append(_ics_event(current, zone))
            except (ValueError, KeyError) as exc:
                problems.append(f"{display}:{start_line}: {exc}")
            current = None
        elif current is not None and name not in current:
            current[name] = (value, params)
    if problems:
        raise CalendarFileError(problems)
    return events


def _ics_event(fields: dict[str, tuple[str, dict[str, str]]], zone: ZoneInfo) -> CalendarEvent:
    if "DTSTART" not in fields:
        raise ValueError("VEVENT without DTSTART")
    value, params = fields["DTSTART"]
    try:
        when = _ics_time(value.strip(), params, zone)
    except ValueError:
        raise ValueError(f"DTSTART '{value}' is not an iCalendar date or date-time") from None
    plain = {k: _unescape(v.strip()) for k, (v, _p) in fields.items()}
    known = None
    if "X-KNOWN-FROM" in fields:
        known_value, known_params = fields["X-KNOWN-FROM"]
        known = _ics_time(known_value.strip(), known_params, zone)
    cancelled = plain.get("STATUS", "").upper() == "CANCELLED"
    kind = plain.get("CATEGORIES", "").split(",")[0].strip()
    importance = 0.0 if cancelled else _importance(plain)
    return CalendarEvent(plain.get("SUMMARY", kind or "event"), kind, when, importance, known)


def parse_calendar(text: str, display: str) -> list[CalendarEvent]:
    """Events of a calendar text: iCalendar when it starts with ``BEGIN:VCALENDAR``, else YAML."""
    if text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        return parse_ics(text, display)
    return parse_yaml_calendar(text, display)
