"""The Yahoo chart source against a local server: daily bars stamped at the session open but known at
the exchange's close (New York time, summer and winter), null closes, unknown symbols, throttling."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.feeds.http import BadResponse, FeedHttpClient, RateLimited, ServerError, ServiceError, Unreachable
from engine.feeds.observations import NS_PER_SECOND
from engine.feeds.sources.yahoo import YahooSource
from tests.fakes.feed_services import DAY, FakeYahoo, fetch_request, wave

NS = NS_PER_SECOND
SPX = {"source": "yahoo", "symbol": "^GSPC", "lag": "15m"}


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


MONDAY_1500_NY = utc("2024-06-03T19:00:00")  # the session is open


def source_for(url: str, **kw) -> YahooSource:
    return YahooSource(FeedHttpClient("yahoo", url, per_minute=600, retries=0, backoff=0.01, **kw))


def closes(observations, member: str = "close") -> dict[int, float]:
    return {o.event_time // NS: o.value for o in observations if o.series == f"spx.{member}"}


async def test_bars_are_known_at_the_session_close_in_new_york_time() -> None:
    with FakeYahoo(now_s=MONDAY_1500_NY) as yahoo:
        found = await source_for(yahoo.url).fetch(
            fetch_request("spx", now_s=MONDAY_1500_NY, history_days=200, **SPX)
        )
        (call,) = yahoo.requests
    assert call.path == "/v8/finance/chart/^GSPC" and call.query["interval"] == "1d"
    assert (
        int(call.query["period1"]) == MONDAY_1500_NY - 200 * DAY and "Mozilla" in call.headers["user-agent"]
    )
    close = closes(found)
    # Friday's close (16:00 EDT = 20:00 UTC) is the newest: Monday's session is still open.
    assert max(close) == utc("2024-05-31T20:00:00")
    # A winter session closes at 16:00 EST = 21:00 UTC.
    assert utc("2024-01-05T21:00:00") in close and utc("2024-01-05T20:00:00") not in close
    assert all(o.available_at - o.event_time == 900 * NS for o in found)
    assert close[utc("2024-05-31T20:00:00")] == wave(utc("2024-05-31T20:00:00"), 5_000.0)
    assert {o.series for o in found} == {"spx.open", "spx.high", "spx.low", "spx.close", "spx.volume"}
    # No weekend bars: nothing is invented for closed markets.
    assert all(datetime.fromtimestamp(t, UTC).weekday() < 5 for t in close)


async def test_a_session_counts_only_after_its_close_plus_the_lag() -> None:
    for minutes_after_close, known in ((10, False), (16, True)):
        now = utc("2024-06-03T20:00:00") + minutes_after_close * 60
        with FakeYahoo(now_s=now) as yahoo:
            found = await source_for(yahoo.url).fetch(
                fetch_request("spx", ("close",), since_s=now - 3 * DAY, now_s=now, **SPX)
            )
        assert (utc("2024-06-03T20:00:00") in closes(found)) is known


async def test_null_closes_are_skipped_value_by_value() -> None:
    friday_open = utc("2024-05-31T13:30:00")
    with FakeYahoo(now_s=MONDAY_1500_NY) as yahoo:
        yahoo.null_closes.add(friday_open)
        found = await source_for(yahoo.url).fetch(
            fetch_request("spx", now_s=MONDAY_1500_NY, history_days=10, **SPX)
        )
    friday_close = utc("2024-05-31T20:00:00")
    assert friday_close not in closes(found) and friday_close not in closes(found, "high")
    assert friday_close in closes(found, "open") and friday_close in closes(found, "volume")


async def test_unknown_symbol_throttling_and_errors() -> None:
    with FakeYahoo(now_s=MONDAY_1500_NY) as yahoo:
        source = source_for(yahoo.url, timeout=1.0)
        with pytest.raises(
            BadResponse, match=r"unknown symbol '\^NOPE' \(No data found, symbol may be delisted\)"
        ):
            await source.fetch(fetch_request("spx", now_s=MONDAY_1500_NY, source="yahoo", symbol="^NOPE"))
        yahoo.throttle()
        with pytest.raises(RateLimited, match="Too Many Requests") as throttled:
            await source.fetch(fetch_request("spx", now_s=MONDAY_1500_NY, **SPX))
        assert throttled.value.retry_after is None
        yahoo.fail(
            "/v8/finance/chart",
            200,
            {
                "chart": {
                    "result": None,
                    "error": {
                        "code": "Bad Request",
                        "description": "Invalid input - interval=1d is not supported",
                    },
                }
            },
        )
        with pytest.raises(ServiceError, match="Invalid input"):
            await source.fetch(fetch_request("spx", now_s=MONDAY_1500_NY, **SPX))
        yahoo.fail("/v8/finance/chart", 500, "Internal Server Error")
        with pytest.raises(ServerError):
            await source.fetch(fetch_request("spx", now_s=MONDAY_1500_NY, **SPX))
        yahoo.slow("/v8/finance/chart", 2.5)
        with pytest.raises(Unreachable):
            await source.fetch(fetch_request("spx", now_s=MONDAY_1500_NY, **SPX))
        yahoo.fail("/v8/finance/chart", 200, '{"chart":{"result":[{"meta":{')
        with pytest.raises(BadResponse, match="not JSON"):
            await source.fetch(fetch_request("spx", now_s=MONDAY_1500_NY, **SPX))
        yahoo.fail("/v8/finance/chart", 200, {"chart": {"result": [], "error": None}})
        assert await source.fetch(fetch_request("spx", now_s=MONDAY_1500_NY, **SPX)) == []
        yahoo.fail(
            "/v8/finance/chart",
            200,
            {
                "chart": {
                    "result": [
                        {
                            "meta": {},
                            "timestamp": [utc("2024-05-30T13:30:00"), "x", None],
                            "indicators": {"quote": [{"close": ["5100.5", 1.0]}]},
                        }
                    ]
                }
            },
        )
        drift = await source.fetch(fetch_request("spx", now_s=MONDAY_1500_NY, **SPX))
    # Meta without a zone: New York and 16:00 by default; a string number is read.
    assert closes(drift) == {utc("2024-05-30T20:00:00"): 5100.5}


async def test_a_fetch_on_a_half_day_does_not_make_past_bars_known_at_1300() -> None:
    now = utc("2024-11-29T19:00:00")  # the day after Thanksgiving, 14:00 New York: closed at 13:00
    with FakeYahoo(now_s=now) as yahoo:
        yahoo.half_day = True
        found = await source_for(yahoo.url).fetch(
            fetch_request("spx", ("close",), now_s=now, history_days=10, **SPX)
        )
    close = closes(found)
    assert utc("2024-11-27T21:00:00") in close and utc("2024-11-27T18:00:00") not in close
    # The half day itself counts from 16:00 like any day: three hours late, never early.
    assert utc("2024-11-29T21:00:00") not in close
