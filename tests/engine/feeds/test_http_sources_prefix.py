"""The prefix (causality) test of each HTTP source: fetching with the service's data cut at ``t`` stores
the same values, known at the same moments, as a fetch made later, for everything known before ``t``;
nothing fetched at ``t`` claims to be known after ``t``; and the as-of join at every decision time
before ``t`` reads the same values from both.

The fake services answer from deterministic data cut at their clock, in each service's wire format (the
stand-in for recorded answers: no network here). The only values a fetch at ``t`` adds on top are the
current ones, stamped ``available_at == t``, which no later fetch can know about.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from engine.config._feeds import ServiceSettings
from engine.feeds.http import FeedHttpClient
from engine.feeds.join import asof
from engine.feeds.observations import NS_PER_SECOND, Observation, to_arrays
from engine.feeds.sources import calendar as calendar_source
from engine.feeds.sources import http_json
from engine.feeds.sources.base import SourceSetup
from engine.feeds.sources.coingecko import CoinGeckoSource
from engine.feeds.sources.cryptocompare import CryptoCompareSource
from engine.feeds.sources.yahoo import YahooSource
from tests.fakes.feed_services import (
    DAY,
    HOUR,
    FakeCoinGecko,
    FakeCryptoCompare,
    FakeJsonApi,
    FakeYahoo,
    fetch_request,
    wave,
)

NS = NS_PER_SECOND
T_END = 1_719_792_000 + 7 * HOUR + 1111  # 2024-07-01 07:18:31 UTC
# Cuts inside a New York session, just after its close (before and after the lag), at night, at a
# weekend, and on the hour boundaries of the hourly services.
CUTS = [
    int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())
    for text in (
        "2024-06-28T15:00:00",
        "2024-06-27T20:05:00",
        "2024-06-26T20:20:00",
        "2024-06-23T13:40:17",
        "2024-06-18T02:40:00",
        "2024-06-30T23:59:59",
    )
]

Fetch = Callable[[int, int], Awaitable[list[Observation]]]


def client(service: str, url: str) -> FeedHttpClient:
    return FeedHttpClient(service, url, per_minute=6000, retries=0)


async def coingecko_hourly(now: int, days: int) -> list[Observation]:
    with FakeCoinGecko(now_s=now) as gecko:
        source = CoinGeckoSource(client("coingecko", gecko.base_url))
        return await source.fetch(
            fetch_request(
                "btc",
                ("price", "market_cap", "volume_24h"),
                now_s=now,
                history_days=days,
                source="coingecko",
                coin="bitcoin",
            )
        )


async def coingecko_daily(now: int, days: int) -> list[Observation]:
    return await coingecko_hourly(now, days + 90)


async def cryptocompare(now: int, days: int) -> list[Observation]:
    with FakeCryptoCompare(now_s=now) as cc:
        source = CryptoCompareSource(client("cryptocompare", cc.url))
        return await source.fetch(
            fetch_request(
                "btc",
                ("price", "volume_24h"),
                now_s=now,
                history_days=days,
                source="cryptocompare",
                symbol="BTC",
            )
        )


async def yahoo(now: int, days: int) -> list[Observation]:
    with FakeYahoo(now_s=now) as server:
        source = YahooSource(client("yahoo", server.url))
        return await source.fetch(
            fetch_request("spx", now_s=now, history_days=days, source="yahoo", symbol="^GSPC", lag="15m")
        )


async def generic(now: int, days: int) -> list[Observation]:
    def rows() -> list[dict]:
        # An hourly series published 10 minutes after each hour; the API lists what it has so far.
        last = now // HOUR * HOUR
        return [{"ts": t, "value": str(wave(t, 42.0))} for t in range(last - days * DAY, last + HOUR, HOUR)]

    with FakeJsonApi("/v1/x", rows) as api:
        setup = SourceSetup("http_json", ServiceSettings(), None, None, ".", options={"retries": 0})
        source = http_json.build(setup)
        try:
            spec = {
                "source": "http_json",
                "url": api.url + "/v1/x",
                "time": "ts",
                "values": {"v": "value"},
                "lag": "10m",
            }
            return await source.fetch(fetch_request("gen", now_s=now, **spec))
        finally:
            await source.aclose()


def calendar_at(tmp_path: Path) -> Fetch:
    (tmp_path / "cal.yaml").write_text(
        "known_ahead: 10d\nevents:\n"
        + "".join(
            f"  - {{name: E{k}, time: '{2024}-06-{k:02d}T12:30:00Z', importance: {1 + k % 3}}}\n"
            for k in range(1, 30, 2)
        )
        + "  - {name: late, time: '2024-06-28T00:00:00Z', known_from: '2024-06-27T00:00:00Z'}\n"
    )

    async def read(now: int, _days: int) -> list[Observation]:
        source = calendar_source.build(SourceSetup("calendar", ServiceSettings(), None, None, str(tmp_path)))
        return await source.fetch(fetch_request("macro", now_s=now, source="calendar", path="cal.yaml"))

    return read


def known_before(observations: list[Observation], t: int, oldest: int) -> set[tuple]:
    return {
        (o.series, o.event_time, o.available_at, o.value)
        for o in observations
        if o.available_at < t * NS and o.event_time >= oldest * NS
    }


@pytest.mark.parametrize(
    "name", ["coingecko_hourly", "coingecko_daily", "cryptocompare", "yahoo", "http_json", "calendar"]
)
async def test_fetching_at_t_matches_a_later_fetch_up_to_t(name: str, tmp_path: Path) -> None:
    fetch: Fetch = {
        "coingecko_hourly": coingecko_hourly,
        "coingecko_daily": coingecko_daily,
        "cryptocompare": cryptocompare,
        "yahoo": yahoo,
        "http_json": generic,
        "calendar": calendar_at(tmp_path),
    }[name]
    days = 20
    later = await fetch(T_END, days + 16)
    for cut in CUTS:
        early = await fetch(cut, days)
        assert early, f"{name}: nothing fetched at {cut}"
        assert max(o.available_at for o in early) <= cut * NS, (
            f"{name}: a value claims to be known after the cut"
        )
        # Both windows hold everything since `oldest` (two days in: a 24h volume needs its day).
        oldest = cut - (days - 2) * DAY if name != "calendar" else 0
        shared = known_before(early, cut, oldest)
        assert shared == known_before(later, cut, oldest), f"{name}: the cut at {cut} disagrees"
        assert len(shared) > 3
        # The join at every hour before the cut reads the same values from either fetch.
        times = np.arange(oldest + 3 * DAY if name != "calendar" else cut - 30 * DAY, cut, HOUR) * NS
        for series in {o.series for o in early}:
            if series.endswith(".events"):
                continue  # calendar rows are compared above; their members are computed per candle
            mine = to_arrays(o for o in early if o.series == series and o.event_time >= oldest * NS)
            theirs = to_arrays(o for o in later if o.series == series and o.event_time >= oldest * NS)
            np.testing.assert_array_equal(asof(times, mine, None), asof(times, theirs, None))
