"""Scheduled events (FOMC, CPI, NFP, halvings...) from a calendar the user maintains: a YAML file or an
iCalendar ``.ics``, at a path in the project or at an http(s) URL.

    feeds:
      macro:
        source: calendar
        path: calendars/example_macro.yaml     # or https://example.org/macro.ics
        events: [fomc, cpi]                     # optional: kinds, or words of the names

Rules read ``macro.hours_to_next``, ``macro.hours_since_last`` and ``macro.importance_next`` (1 low to 3
high), e.g. ``macro.hours_to_next < 6`` ("an event within six hours"). NaN when no next (or no past)
event is known at the candle.

How the series are produced: each read stores one observation per scheduled time in ``NAME.events``
(``value`` = importance, the highest of the events at that time; 0 = cancelled), and the hours are
computed at each candle from the events known then (``engine/feeds/calendar_join.py``): exact at any
timeframe, one row per event, and the file's events are stored once (re-reading an unchanged file adds
nothing). A calendar announces the future, so ``available_at`` precedes ``event_time``: it is the
event's ``known_from``, else its time minus ``known_ahead`` (per event or for the whole file), else the
moment the file was read, and never later than that moment. A backtest over dates before the first
read therefore sees only what the file declares as known then. Removing an event from the file does not
erase what was stored: mark it ``cancelled: true`` (``STATUS:CANCELLED``) instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from engine.feeds.http import BadResponse
from engine.feeds.observations import Observation, series_key
from engine.feeds.sources._calendar_files import CalendarEvent, CalendarFileError, parse_calendar
from engine.feeds.sources._origins import OriginClients
from engine.feeds.sources.base import FetchRequest, SourceSetup

__all__ = ["CALLS_PER_MINUTE", "CalendarSource", "build", "calendar_observations", "select_events"]

# No BASE_URL: a calendar is a file, or a URL of its own.
CALLS_PER_MINUTE = 10
SERVICE = "calendar"


def select_events(events: Iterable[CalendarEvent], wanted: Sequence[str] | None) -> list[CalendarEvent]:
    """The events whose kind is one of ``wanted``, or whose name contains one (case-insensitive)."""
    if not wanted:
        return list(events)
    words = [w.lower() for w in wanted]
    return [e for e in events if e.kind.lower() in words or any(w in e.name.lower() for w in words)]


def calendar_observations(events: Iterable[CalendarEvent], feed: str, read_ns: int) -> list[Observation]:
    """One observation per scheduled time: the highest importance there (0 when every event at that
    time is cancelled), known from the earliest moment one of them was known (at most ``read_ns``)."""
    groups: dict[int, list[CalendarEvent]] = {}
    for event in events:
        groups.setdefault(event.time_ns, []).append(event)
    series = series_key(feed, "events")
    out = []
    for when, group in sorted(groups.items()):
        chosen = [e for e in group if e.importance > 0] or group
        since = min(read_ns if e.known_from_ns is None else min(read_ns, e.known_from_ns) for e in chosen)
        out.append(Observation(series, when, since, max(e.importance for e in chosen), SERVICE))
    return out


class CalendarSource:
    kind = SERVICE

    def __init__(self, setup: SourceSetup):
        self.root = Path(setup.root)
        self.clients = OriginClients(setup, CALLS_PER_MINUTE)

    async def read(self, location: str) -> tuple[str, str]:
        """(text, name to show in messages) of the calendar at a path or URL."""
        if location.startswith(("http://", "https://")):
            http, url = self.clients.client_for(location)
            return await http.get_text(url), http.mask(location)
        path = Path(location)
        if not path.is_absolute():
            path = self.root / path
        try:
            return path.read_text(encoding="utf-8"), location
        except OSError as exc:
            raise BadResponse(
                SERVICE, f"{location}: cannot read the calendar ({exc.strerror or exc})"
            ) from None
        except UnicodeDecodeError:
            raise BadResponse(SERVICE, f"{location}: the calendar is not UTF-8 text") from None

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        model = request.feed.model
        text, display = await self.read(str(model.path or ""))
        try:
            events = parse_calendar(text, display)
        except CalendarFileError as exc:
            raise BadResponse(SERVICE, str(exc)) from None
        chosen = select_events(events, model.events)
        return calendar_observations(chosen, request.feed.name, request.now_ns)

    def take_calls(self) -> int:
        return self.clients.take_calls()

    def busiest(self) -> tuple[int, float] | None:
        return self.clients.busiest()

    async def aclose(self) -> None:
        await self.clients.aclose()


def build(setup: SourceSetup) -> CalendarSource:
    return CalendarSource(setup)
