"""Calendar feeds: the example calendar, YAML and iCalendar files (by path and by URL), when each event
counts as known, cancellations, errors with their place in the file, and the members computed at each
candle close through the rule language."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsl import Source, compile_expression
from engine.config._feeds import ServiceSettings
from engine.config._project import project_registry
from engine.feeds.calendar_join import calendar_values
from engine.feeds.context import EvalContext
from engine.feeds.http import BadResponse
from engine.feeds.observations import NS_PER_SECOND, to_arrays
from engine.feeds.sources._calendar_files import parse_calendar
from engine.feeds.sources.base import SourceSetup
from engine.feeds.sources.calendar import build, calendar_observations
from engine.feeds.store import SeriesReader, read_series, write_observations
from engine.store import create_engine_for, session_factory, upgrade_async
from tests.fakes.feed_services import FakeJsonApi, fetch_request

NS = NS_PER_SECOND
HOUR_NS = 3600 * NS
ROOT = Path(__file__).resolve().parents[3]


def t(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * NS


def source(root: Path, **options):
    return build(
        SourceSetup("calendar", ServiceSettings(), None, None, str(root), options={"retries": 0, **options})
    )


def test_the_example_calendar_reads_in_new_york_time() -> None:
    text = (ROOT / "calendars" / "example_macro.yaml").read_text()
    assert text.startswith("# EXAMPLE CALENDAR")
    events = parse_calendar(text, "calendars/example_macro.yaml")
    kinds = {e.kind for e in events}
    assert kinds == {"fomc", "cpi", "nfp", "halving"}
    when = {(e.kind, e.time_ns) for e in events}
    assert ("fomc", t("2024-01-31T19:00:00")) in when  # 14:00 EST
    assert ("fomc", t("2024-06-12T18:00:00")) in when  # 14:00 EDT
    assert ("halving", t("2024-04-20T00:09:00")) in when
    assert all(e.time_ns - e.known_from_ns == 30 * 24 * HOUR_NS for e in events)


async def test_a_read_stores_one_row_per_event_known_ahead_or_from_the_read(tmp_path: Path) -> None:
    (tmp_path / "calendars").mkdir()
    (tmp_path / "calendars" / "macro.yaml").write_text(
        (ROOT / "calendars" / "example_macro.yaml").read_text()
    )
    read_at = t("2024-06-01T00:00:00") // NS
    request = fetch_request(
        "macro", now_s=read_at, source="calendar", path="calendars/macro.yaml", events=["fomc"]
    )
    found = await source(tmp_path).fetch(request)
    assert {o.series for o in found} == {"macro.events"} and len(found) == 24
    june = next(o for o in found if o.event_time == t("2024-06-12T18:00:00"))
    assert june.available_at == june.event_time - 30 * 24 * HOUR_NS and june.value == 3.0
    # Announced 30 days ahead, but the file was read on June 1: known from the read at the latest.
    july = next(o for o in found if o.event_time == t("2024-07-31T18:00:00"))
    assert july.available_at == read_at * NS
    # Stored once: a second read of the same file adds nothing; the store accepts known-before-event.
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        assert await write_observations(session, found) == 24
    again = await source(tmp_path).fetch(
        fetch_request("macro", now_s=read_at + 86_400, **request.feed.model.model_dump(exclude_none=True))
    )
    async with sessions() as session, session.begin():
        assert await write_observations(session, again) == 0
        stored = await read_series(session, "macro.events")
    await engine.dispose()
    assert len(stored) == 24


def test_events_at_the_same_time_and_cancellations() -> None:
    text = """
events:
  - {name: CPI, kind: cpi, time: "2024-03-12T12:30:00Z", importance: 2, known_from: "2024-01-01"}
  - {name: Big speech, kind: speech, time: "2024-03-12T12:30:00Z", importance: 3, known_from: "2024-02-01"}
  - {name: NFP, kind: nfp, time: "2024-03-08T13:30:00Z", cancelled: true}
"""
    events = parse_calendar(text, "c.yaml")
    rows = calendar_observations(events, "m", t("2024-03-01T00:00:00"))
    assert [(r.event_time, r.value, r.available_at) for r in rows] == [
        (t("2024-03-08T13:30:00"), 0.0, t("2024-03-01T00:00:00")),
        (t("2024-03-12T12:30:00"), 3.0, t("2024-01-01T00:00:00")),
    ]


def test_members_at_decision_times_follow_what_was_known() -> None:
    events = [
        # (event, known from, importance)
        (t("2024-01-10T12:00:00"), t("2024-01-01T00:00:00"), 2.0),
        (t("2024-01-20T12:00:00"), t("2024-01-01T00:00:00"), 3.0),
        (t("2024-01-15T00:00:00"), t("2024-01-12T00:00:00"), 1.0),  # added to the file later
        (t("2024-01-20T12:00:00"), t("2024-01-18T00:00:00"), 0.0),  # then cancelled
    ]
    from engine.feeds.observations import Observation

    series = to_arrays(Observation("m.events", e, a, v, "calendar") for e, a, v in events)
    times = np.array(
        [
            t(x)
            for x in (
                "2023-12-31T00:00:00",
                "2024-01-09T12:00:00",
                "2024-01-11T00:00:00",
                "2024-01-13T00:00:00",
                "2024-01-19T00:00:00",
                "2024-01-10T12:00:00",
            )
        ]
    )
    to_next = calendar_values(times, series, "hours_to_next")
    since = calendar_values(times, series, "hours_since_last")
    weight = calendar_values(times, series, "importance_next")
    assert np.isnan(to_next[0]) and np.isnan(since[0])
    assert to_next[1] == 24 and np.isnan(since[1]) and weight[1] == 2
    assert to_next[2] == 9 * 24 + 12 and since[2] == 12 and weight[2] == 3  # Jan 15 not known yet
    assert to_next[3] == 48 and weight[3] == 1
    assert np.isnan(to_next[4]) and since[4] == 4 * 24  # the Jan 20 event was cancelled on Jan 18
    assert since[5] == 0 and to_next[5] == 10 * 24  # at the event itself: it is the last one


ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//example//EN\r\n"
    "BEGIN:VEVENT\r\nUID:1\r\nDTSTART;TZID=America/New_York:20240131T140000\r\nSUMMARY:FOMC rate\r\n  decision\r\n"
    "CATEGORIES:fomc,rates\r\nPRIORITY:1\r\nX-KNOWN-FROM:20230601T000000Z\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:2\r\nDTSTART:20240213T133000Z\r\nSUMMARY:US CPI\\, January\r\nCATEGORIES:cpi\r\n"
    "PRIORITY:5\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:3\r\nDTSTART;VALUE=DATE:20240420\r\nSUMMARY:Bitcoin halving\r\nX-IMPORTANCE:3\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:4\r\nDTSTART:20240308T133000Z\r\nSUMMARY:NFP\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


async def test_an_icalendar_by_url(tmp_path: Path) -> None:
    with FakeJsonApi() as server:
        server.texts["/files/macro.ics"] = ICS
        request = fetch_request(
            "m", now_s=t("2024-01-01T00:00:00") // NS, source="calendar", path=server.url + "/files/macro.ics"
        )
        found = await source(tmp_path).fetch(request)
        only_cpi = await source(tmp_path).fetch(
            fetch_request(
                "m",
                now_s=t("2024-01-01T00:00:00") // NS,
                source="calendar",
                path=server.url + "/files/macro.ics",
                events=["CPI"],
            )
        )
        with pytest.raises(BadResponse, match="HTTP 404"):
            await source(tmp_path).fetch(
                fetch_request(
                    "m", now_s=1_704_067_200, source="calendar", path=server.url + "/files/none.ics"
                )
            )
    rows = {o.event_time: (o.value, o.available_at) for o in found}
    assert rows[t("2024-01-31T19:00:00")] == (3.0, t("2023-06-01T00:00:00"))
    assert rows[t("2024-02-13T13:30:00")] == (2.0, t("2024-01-01T00:00:00"))
    assert rows[t("2024-04-20T00:00:00")] == (3.0, t("2024-01-01T00:00:00"))
    assert rows[t("2024-03-08T13:30:00")][0] == 0.0
    assert [o.event_time for o in only_cpi] == [t("2024-02-13T13:30:00")]
    names = {e.name for e in parse_calendar(ICS, "x.ics")}
    assert {"FOMC rate decision", "US CPI, January"} <= names


async def test_broken_calendars_say_where(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "events:\n  - {name: FOMC, time: soon}\n  - {name: CPI, time: '2024-01-01', importance: 7}\n  - {nam: x}\n"
    )
    (tmp_path / "bad.ics").write_text(
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:no start\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    (tmp_path / "latin1.yaml").write_bytes("events: []\n# caf\xe9\n".encode("latin-1"))
    src = source(tmp_path)
    with pytest.raises(BadResponse) as bad:
        await src.fetch(fetch_request("m", now_s=1_704_067_200, source="calendar", path="bad.yaml"))
    message = str(bad.value)
    assert "bad.yaml:2:5: time 'soon' is not an ISO 8601 date or time" in message
    assert "bad.yaml:3:5: importance must be 1, 2 or 3 (got 7)" in message
    assert "bad.yaml:4:5: unknown key(s) nam" in message
    with pytest.raises(BadResponse, match=r"bad.ics:2: VEVENT without DTSTART"):
        await src.fetch(fetch_request("m", now_s=1_704_067_200, source="calendar", path="bad.ics"))
    with pytest.raises(BadResponse, match="cannot read the calendar"):
        await src.fetch(fetch_request("m", now_s=1_704_067_200, source="calendar", path="missing.yaml"))
    with pytest.raises(BadResponse, match="not UTF-8"):
        await src.fetch(fetch_request("m", now_s=1_704_067_200, source="calendar", path="latin1.yaml"))


async def test_rules_read_the_calendar_at_each_candle_close(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n  macro:\n    source: calendar\n    path: cal.yaml\n    events: [fomc]\n"
    )
    (tmp_path / "cal.yaml").write_text(
        "known_ahead: 7d\nevents:\n  - {name: FOMC, kind: fomc, time: '2024-01-31T19:00:00Z', importance: 3}\n"
    )
    found = await source(tmp_path).fetch(
        fetch_request(
            "macro", now_s=t("2024-03-01T00:00:00") // NS, source="calendar", path="cal.yaml", events=["fomc"]
        )
    )
    registry = project_registry(tmp_path)
    plan = compile_expression(Source("macro.hours_to_next", "<rule>"), registry, "1h", {})
    opens = pd.date_range("2024-01-24T16:00:00", periods=6, freq="1h", tz="UTC")
    candles = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}, index=opens)
    reader = SeriesReader({"macro.events": to_arrays(found)})
    values = plan.evaluate(candles, EvalContext("BTC/USDT", reader=reader)).iloc[:, 0].tolist()
    # Known from Jan 24 19:00 (7 days ahead): the 17:00 and 18:00 closes do not see it yet.
    assert np.isnan(values[0]) and np.isnan(values[1])
    assert values[2:] == [168.0, 167.0, 166.0, 165.0]
    within = compile_expression(Source("macro.hours_to_next < 167.5", "<rule>"), registry, "1h", {})
    flags = within.evaluate(candles, EvalContext("BTC/USDT", reader=reader)).iloc[:, 0].tolist()
    assert [bool(f) for f in flags] == [False, False, False, True, True, True]


def test_members_match_a_brute_force_reading_of_the_schedule() -> None:
    from engine.feeds.observations import Observation

    rng = np.random.default_rng(11)
    base = t("2024-01-01T00:00:00")
    hour = HOUR_NS
    rows = []
    for _ in range(60):
        event = base + int(rng.integers(0, 500)) * hour
        known = event - int(rng.integers(-50, 300)) * hour  # some only known after they happened
        rows.append(Observation("m.events", event, known, float(rng.integers(0, 4)), "calendar"))
    series = to_arrays(rows)
    times = base + rng.integers(-20, 560, 400) * hour + rng.integers(0, 3600, 400) * NS

    def brute(at: int) -> tuple[float, float, float]:
        latest: dict[int, tuple[int, float]] = {}
        for row in sorted(rows, key=lambda r: (r.available_at, r.event_time)):
            if row.available_at <= at:
                known_at, value = latest.get(row.event_time, (-1, 0.0))
                value = max(value, row.value) if known_at == row.available_at else row.value
                latest[row.event_time] = (row.available_at, value)
        active = sorted((e, v) for e, (_a, v) in latest.items() if v > 0)
        after = [(e, v) for e, v in active if e > at]
        before = [e for e, _v in active if e <= at]
        return (
            (after[0][0] - at) / hour if after else np.nan,
            (at - before[-1]) / hour if before else np.nan,
            after[0][1] if after else np.nan,
        )

    expected = np.array([brute(int(x)) for x in times])
    for column, member in enumerate(("hours_to_next", "hours_since_last", "importance_next")):
        np.testing.assert_allclose(
            calendar_values(times, series, member), expected[:, column], equal_nan=True
        )
        ordered = np.sort(times)
        np.testing.assert_allclose(
            calendar_values(ordered, series, member), expected[np.argsort(times), column], equal_nan=True
        )
