"""The CryptoCompare source against a local min-api server: paged hourly history known at each bar's
close, the rolling 24h volume across pages, social statistics with a key, HTTP-200 errors."""

from __future__ import annotations

import itertools
import logging

import pytest

from engine.feeds.http import (
    BadResponse,
    Banned,
    FeedHttpClient,
    RateLimited,
    ServerError,
    ServiceError,
    Unreachable,
)
from engine.feeds.observations import NS_PER_SECOND
from engine.feeds.sources.cryptocompare import CryptoCompareSource
from tests.fakes.feed_services import DAY, HOUR, FakeCryptoCompare, fetch_request, wave

NOW = 1_717_243_200 + 13 * HOUR + 1234  # 2024-06-01 13:20:34 UTC
NS = NS_PER_SECOND
BTC = {"source": "cryptocompare", "symbol": "BTC"}


def source_for(url: str, key: str | None = None, **kw) -> CryptoCompareSource:
    secrets = (key,) if key else ()
    http = FeedHttpClient(
        "cryptocompare", url, per_minute=600, retries=0, backoff=0.01, secrets=secrets, **kw
    )
    return CryptoCompareSource(http, key)


def series(observations, name: str) -> dict[int, float]:
    return {o.event_time // NS: o.value for o in observations if o.series == name}


async def test_history_pages_back_and_each_bar_is_known_at_its_close() -> None:
    with FakeCryptoCompare(now_s=NOW) as cc:
        found = await source_for(cc.url).fetch(
            fetch_request("btc", ("price", "volume_24h"), now_s=NOW, history_days=100, **BTC)
        )
        pages = cc.calls("/data/v2/histohour")
    assert len(pages) == 2
    assert (
        pages[0].query["limit"] == "2000"
        and pages[0].query["fsym"] == "BTC"
        and pages[0].query["tsym"] == "USD"
    )
    first_bar = NOW // HOUR * HOUR - 2000 * HOUR
    # The older page ends 22 h into the newer one, so the 24h volume is whole across the seam.
    assert int(pages[1].query["toTs"]) == first_bar + 22 * HOUR
    price = series(found, "btc.price")
    closes = sorted(price)
    assert closes[-1] == NOW // HOUR * HOUR  # the 12:00 bar closed at 13:00; the 13:00 bar is in progress
    assert closes[0] <= NOW - 100 * DAY + HOUR
    assert all(b - a == HOUR for a, b in itertools.pairwise(closes))
    assert all(price[t] == FakeCryptoCompare.close_at(t) for t in closes[::97])
    assert all(o.available_at == o.event_time for o in found)
    volume = series(found, "btc.volume_24h")
    assert sorted(volume)[0] == closes[23] and set(volume) == set(closes[23:])
    seam = first_bar + 10 * HOUR + HOUR  # a bar whose window spans both pages
    expected = sum(wave(s, 4e8, scale=0.3, period=3 * DAY) for s in range(seam - 24 * HOUR, seam, HOUR))
    assert volume[seam] == pytest.approx(expected)


async def test_a_resume_asks_only_for_the_gap_and_stops_at_the_listing() -> None:
    with FakeCryptoCompare(now_s=NOW, listed_s=NOW - 40 * HOUR) as cc:
        source = source_for(cc.url)
        found = await source.fetch(fetch_request("btc", ("price",), since_s=NOW - 3 * HOUR, now_s=NOW, **BTC))
        assert [int(r.query["limit"]) for r in cc.requests] == [28]
        # A first fetch of a coin listed 40 h ago: zeros before the listing are skipped, paging stops.
        young = await source.fetch(fetch_request("btc", ("price",), now_s=NOW, history_days=200, **BTC))
        assert len(cc.requests) == 2
    assert len(series(found, "btc.price")) == 28
    assert min(series(young, "btc.price")) >= NOW - 40 * HOUR


async def test_over_quota_and_errors_come_as_http_200() -> None:
    with FakeCryptoCompare(now_s=NOW) as cc:
        source = source_for(cc.url)
        cc.quota = 0
        with pytest.raises(RateLimited, match="Type 99"):
            await source.fetch(fetch_request("btc", ("price",), since_s=NOW - HOUR, now_s=NOW, **BTC))
        cc.quota = None
        with pytest.raises(ServiceError, match="fsym param is invalid"):
            await source.fetch(
                fetch_request("x", ("price",), now_s=NOW, source="cryptocompare", symbol="NOPE")
            )
        cc.fail("/data/v2/histohour", 200, {"Response": "Error", "Message": "rate limit exceeded", "Type": 6})
        with pytest.raises(RateLimited):
            await source.fetch(fetch_request("btc", ("price",), now_s=NOW, **BTC))


@pytest.mark.parametrize(
    ("status", "body", "headers", "error"),
    [
        (429, '{"Response":"Error","Message":"Rate limit excedeed!","Type":99}', {}, RateLimited),
        (403, "<html>Forbidden</html>", {"Retry-After": "0"}, Banned),
        (502, "<html>Bad Gateway</html>", {}, ServerError),
        (200, "<!DOCTYPE html><html>Cloudflare</html>", {}, BadResponse),
        (200, '{"Response":"Success","Data":{"Data":[{"time": 1', {}, BadResponse),
        (200, {"Response": "Success", "Type": 100, "Data": {}}, {}, BadResponse),
    ],
)
async def test_http_fault_shapes(status, body, headers, error) -> None:
    with FakeCryptoCompare(now_s=NOW) as cc:
        cc.fail("/data/v2/histohour", status, body, headers=headers)
        with pytest.raises(error):
            await source_for(cc.url).fetch(fetch_request("btc", ("price",), now_s=NOW, **BTC))


async def test_timeouts_truncation_and_drift() -> None:
    with FakeCryptoCompare(now_s=NOW) as cc:
        source = source_for(cc.url, timeout=1.0)
        cc.slow("/data/v2/histohour", 2.5)
        with pytest.raises(Unreachable, match="timed out"):
            await source.fetch(fetch_request("btc", ("price",), now_s=NOW, **BTC))
        cc.truncate("/data/v2/histohour")
        with pytest.raises(Unreachable):
            await source.fetch(fetch_request("btc", ("price",), now_s=NOW, **BTC))
        bar = NOW // HOUR * HOUR - 5 * HOUR
        drift = [
            {"time": bar, "close": "61000.5", "volumeto": None},
            {"time": bar + HOUR, "close": None},
            {"time": "later", "close": 1.0},
            {"close": 2.0},
            {"time": bar + 2 * HOUR, "close": 0},
            {"time": bar + 3 * HOUR, "close": 62000, "volumeto": "12"},
        ]
        cc.fail(
            "/data/v2/histohour",
            200,
            {"Response": "Success", "Type": 100, "Data": {"TimeFrom": bar, "Data": drift}},
        )
        found = await source.fetch(
            fetch_request("btc", ("price", "volume_24h"), since_s=NOW - HOUR, now_s=NOW, **BTC)
        )
        cc.fail("/data/v2/histohour", 200, {"Response": "Success", "Type": 100, "Data": {"Data": []}})
        empty = await source.fetch(fetch_request("btc", ("price",), since_s=NOW - HOUR, now_s=NOW, **BTC))
    assert series(found, "btc.price") == {bar + HOUR: 61000.5, bar + 4 * HOUR: 62000.0}
    assert series(found, "btc.volume_24h") == {}
    assert empty == []


async def test_social_statistics_need_the_key_in_the_authorization_header(caplog) -> None:
    key = "cc-key-0a1b2c3d4e5f"
    with FakeCryptoCompare(now_s=NOW, key=key) as cc:
        keyless = await source_for(cc.url).fetch(
            fetch_request("btc", ("followers", "posts"), now_s=NOW, **BTC)
        )
        assert keyless == [] and cc.requests == []
        with caplog.at_level(logging.DEBUG):
            found = await source_for(cc.url, key).fetch(
                fetch_request("btc", ("price", "followers", "posts"), now_s=NOW, history_days=10, **BTC)
            )
            cc.quota = 0
            with pytest.raises(RateLimited) as failure:
                await source_for(cc.url, key).fetch(fetch_request("btc", ("followers",), now_s=NOW, **BTC))
        social = cc.calls("/data/social")[0]
    assert social.query == {"coinId": "1182", "limit": "11"}
    assert all(
        r.headers["authorization"] == f"Apikey {key}" and "api_key" not in r.query for r in cc.requests
    )
    followers = [o for o in found if o.series == "btc.followers"]
    # A day's statistics are known at its end: the newest is yesterday's, stamped at today's 00:00.
    assert max(o.event_time for o in followers) == NOW // DAY * DAY * NS
    assert all(o.available_at == o.event_time and o.event_time % (DAY * NS) == 0 for o in followers)
    assert {o.series for o in found} == {"btc.price", "btc.followers", "btc.posts"}
    assert key not in caplog.text and key not in str(failure.value)


async def test_a_histoday_page_is_known_at_each_day_end() -> None:
    from engine.feeds.sources.cryptocompare import parse_histo

    with FakeCryptoCompare(now_s=NOW) as cc:
        http = FeedHttpClient("cryptocompare", cc.url, per_minute=600, retries=0)
        body = await http.get_json("/data/v2/histoday", {"fsym": "BTC", "tsym": "USD", "limit": 40})
        await http.aclose()
    found, first = parse_histo(body, "btc", ("price", "volume_24h"), NOW * NS, 0, period_s=DAY)
    price = series(found, "btc.price")
    today = NOW // DAY * DAY
    assert first == today - 40 * DAY and max(price) == today  # yesterday's bar, closed at 00:00
    assert set(series(found, "btc.volume_24h")) == set(price)  # a daily bar is a day's volume
    assert all(o.available_at == o.event_time for o in found)
