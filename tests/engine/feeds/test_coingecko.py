"""The CoinGecko source against a local server speaking CoinGecko v3: history and current values, the
available_at rules of each granularity, the live last point, dominance, every error shape."""

from __future__ import annotations

import itertools
import logging
import socket

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
from engine.feeds.sources.coingecko import CoinGeckoSource
from tests.fakes.feed_services import DAY, HOUR, FakeCoinGecko, fetch_request

NOW = 1_717_243_200 + 13 * HOUR + 17 * 60 + 23  # 2024-06-01 13:17:23 UTC
NS = NS_PER_SECOND
BTC = {"source": "coingecko", "coin": "bitcoin", "symbol": "BTC"}


def client(url: str, **kw) -> FeedHttpClient:
    return FeedHttpClient(
        "coingecko",
        url,
        per_minute=kw.pop("per_minute", 600),
        retries=kw.pop("retries", 0),
        backoff=0.01,
        **kw,
    )


def by_series(observations) -> dict[str, list]:
    out: dict[str, list] = {}
    for obs in observations:
        out.setdefault(obs.series, []).append(obs)
    return out


async def test_first_fetch_gives_hourly_history_current_values_and_dominance() -> None:
    with FakeCoinGecko(now_s=NOW) as gecko:
        source = CoinGeckoSource(client(gecko.base_url))
        found = by_series(await source.fetch(fetch_request("btc", now_s=NOW, **BTC)))
        chart = gecko.calls("/api/v3/coins/bitcoin/market_chart")[0]
        assert chart.query == {"vs_currency": "usd", "days": "90"}
        simple = gecko.calls("/api/v3/simple/price")[0].query
        assert simple["ids"] == "bitcoin" and simple["include_last_updated_at"] == "true"
    prices = found["btc.price"]
    history = [o for o in prices if o.available_at < NOW * NS]
    current = [o for o in prices if o.available_at == NOW * NS]
    # Hourly grid points, each known 5 minutes after its time; none known later than the fetch.
    assert len(history) >= 89 * 24
    assert all(o.available_at - o.event_time == 300 * NS for o in history)
    assert all((o.event_time // NS) % HOUR == 0 for o in history)
    assert history[-1].event_time // NS == NOW // HOUR * HOUR  # 13:00, final at 13:05
    assert history[-1].value == FakeCoinGecko.price_at("bitcoin", history[-1].event_time // NS)
    # Current: the simple price (last_updated_at) and the chart's live last point, both known now.
    assert {o.event_time // NS for o in current} == {NOW - 30, NOW - 7}
    assert {m for m in found} == {
        "btc.price",
        "btc.market_cap",
        "btc.volume_24h",
        "btc.change_24h",
        "btc.dominance",
    }
    (dominance,) = found["btc.dominance"]
    assert dominance.event_time == (NOW - 60) * NS and dominance.available_at == NOW * NS
    assert 45 < dominance.value < 60
    assert [o.available_at for o in found["btc.change_24h"]] == [NOW * NS]


async def test_daily_points_are_final_at_0010_the_next_day() -> None:
    for now in (NOW // DAY * DAY + 5 * 60, NOW // DAY * DAY + 11 * 60):  # 00:05 and 00:11 UTC
        with FakeCoinGecko(now_s=now) as gecko:
            source = CoinGeckoSource(client(gecko.base_url))
            request = fetch_request("btc", ("price",), now_s=now, history_days=200, **BTC)
            prices = await source.fetch(request)
        history = [o for o in prices if o.available_at < now * NS]
        assert all(o.available_at - o.event_time == DAY * NS + 600 * NS for o in history)
        assert all((o.event_time // NS) % DAY == 0 for o in history)
        newest = max(o.event_time for o in history) // NS
        # At 00:05 yesterday's point is not final yet; at 00:11 it is.
        assert newest == (now // DAY - (2 if now % DAY < 600 else 1)) * DAY


async def test_a_short_gap_asks_for_five_minute_points_and_a_fresh_series_for_none() -> None:
    with FakeCoinGecko(now_s=NOW) as gecko:
        source = CoinGeckoSource(client(gecko.base_url))
        gap = await source.fetch(fetch_request("btc", ("price",), since_s=NOW - 3 * HOUR, now_s=NOW, **BTC))
        assert gecko.calls("/api/v3/coins")[-1].query["days"] == "1"
        steps = sorted({o.event_time // NS for o in gap if o.available_at < NOW * NS})
        assert {b - a for a, b in itertools.pairwise(steps)} == {300}
        calls = len(gecko.requests)
        # Refreshed 2 minutes ago: the current values alone keep it up to date.
        fresh = await source.fetch(fetch_request("btc", ("price",), since_s=NOW - 120, now_s=NOW, **BTC))
        assert len(gecko.requests) == calls + 1 and gecko.requests[-1].path == "/api/v3/simple/price"
        assert [o.available_at for o in fresh] == [NOW * NS]


async def test_the_demo_key_goes_in_its_header_and_never_in_logs(caplog) -> None:
    key = "CG-demo-secret-1234567"
    with FakeCoinGecko(now_s=NOW, key=key) as gecko:
        http = client(gecko.base_url, secrets=(key,))
        source = CoinGeckoSource(http, key)
        with caplog.at_level(logging.DEBUG):
            assert await source.fetch(fetch_request("btc", ("price", "dominance"), now_s=NOW, **BTC))
            gecko.rate_limit(retry_after=None)
            with pytest.raises(RateLimited) as failure:
                await source.fetch(fetch_request("btc", ("price",), since_s=NOW - 60, now_s=NOW, **BTC))
        assert all(r.headers.get("x-cg-demo-api-key") == key for r in gecko.requests)
        assert all(key not in str(r.query) for r in gecko.requests)
        # Without the key the service refuses: a clear error that does not quote a key.
        with pytest.raises(BadResponse) as refused:
            await CoinGeckoSource(client(gecko.base_url)).fetch(
                fetch_request("btc", ("price",), now_s=NOW, **BTC)
            )
    assert "API Key Missing" in str(refused.value)
    assert key not in caplog.text and key not in str(failure.value)
    assert failure.value.retry_after is None and "exceeded the Rate Limit" in str(failure.value)


async def test_429_with_retry_after_is_waited_out() -> None:
    with FakeCoinGecko(now_s=NOW) as gecko:
        source = CoinGeckoSource(client(gecko.base_url, retries=1))
        gecko.rate_limit("/api/v3/simple/price", retry_after="1")
        found = await source.fetch(fetch_request("btc", ("price",), since_s=NOW - 60, now_s=NOW, **BTC))
        assert found
        first, second = gecko.calls("/api/v3/simple/price")
        assert second.at - first.at >= 0.95


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        (lambda g: g.fail("/api/v3/simple/price", 418, "I'm a teapot"), Banned, "HTTP 418"),
        (lambda g: g.fail("/api/v3/simple/price", 403, "<html>Forbidden</html>"), Banned, "HTTP 403"),
        (lambda g: g.fail("/api/v3/simple/price", 503, "<html>Bad gateway</html>"), ServerError, "HTTP 503"),
        (lambda g: g.slow("/api/v3/simple/price", 2.5), Unreachable, "timed out"),
        (lambda g: g.truncate("/api/v3/simple/price"), Unreachable, ""),
        (lambda g: g.drop("/api/v3/simple/price"), Unreachable, ""),
        (lambda g: g.fail("/api/v3/simple/price", 200, '{"bitcoin": {"usd": 6'), BadResponse, "not JSON"),
        (lambda g: g.fail("/api/v3/simple/price", 200, "<html>maintenance</html>"), BadResponse, "not JSON"),
        (
            lambda g: g.fail(
                "/api/v3/simple/price", 200, {"status": {"error_code": 10010, "error_message": "plan"}}
            ),
            ServiceError,
            "error 10010",
        ),
        (
            lambda g: g.fail(
                "/api/v3/simple/price", 200, {"status": {"error_code": 429, "error_message": "slow"}}
            ),
            RateLimited,
            "slow",
        ),
        (lambda g: g.fail("/api/v3/simple/price", 200, {}), BadResponse, "unknown coin id"),
        (lambda g: g.fail("/api/v3/global", 200, {"data": {}}), BadResponse, "market_cap_percentage"),
    ],
)
async def test_each_fault_shape_is_a_clear_error(fault, error, words) -> None:
    with FakeCoinGecko(now_s=NOW) as gecko:
        source = CoinGeckoSource(client(gecko.base_url, timeout=1.0))
        fault(gecko)
        with pytest.raises(error) as raised:
            await source.fetch(
                fetch_request("btc", ("price", "dominance"), since_s=NOW - 60, now_s=NOW, **BTC)
            )
    assert words in str(raised.value)


async def test_connection_refused_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = CoinGeckoSource(client(f"http://127.0.0.1:{port}/api/v3"))
    with pytest.raises(Unreachable):
        await source.fetch(fetch_request("btc", ("price",), now_s=NOW, **BTC))


async def test_unknown_coin_and_schema_drift_value_by_value() -> None:
    with FakeCoinGecko(now_s=NOW) as gecko:
        source = CoinGeckoSource(client(gecko.base_url))
        with pytest.raises(BadResponse, match="unknown coin id 'bitcoinz'"):
            await source.fetch(
                fetch_request("x", ("price",), now_s=NOW, source="coingecko", coin="bitcoinz", history_days=3)
            )
        ms = (NOW - 2 * DAY) * 1000
        gecko.fail(
            "/api/v3/simple/price",
            200,
            {
                "bitcoin": {
                    "usd": "67187.34",
                    "usd_market_cap": None,
                    "usd_24h_vol": "n/a",
                    "last_updated_at": "1717240000",
                }
            },
        )
        gecko.fail(
            "/api/v3/coins/bitcoin/market_chart",
            200,
            {
                "prices": [
                    [ms, None],
                    ["soon", 1.0],
                    [ms + 3_600_000, "61000.5"],
                    [ms + 7_200_000],
                    "x",
                    [ms + 9e6, 62000],
                ],
                "market_caps": None,
            },
        )
        found = by_series(
            await source.fetch(fetch_request("btc", ("price", "market_cap", "volume_24h"), now_s=NOW, **BTC))
        )
    assert set(found) == {"btc.price"}
    values = sorted((o.event_time // NS, o.value) for o in found["btc.price"])
    assert values == [(ms // 1000 + 3600, 61000.5), (ms // 1000 + 9000, 62000.0), (1_717_240_000, 67187.34)]


async def test_empty_history_is_no_observation_not_an_error() -> None:
    with FakeCoinGecko(now_s=NOW) as gecko:
        source = CoinGeckoSource(client(gecko.base_url))
        gecko.fail("/api/v3/coins", 200, {"prices": [], "market_caps": [], "total_volumes": []})
        found = await source.fetch(fetch_request("btc", ("market_cap",), now_s=NOW, **BTC))
    # Only the current value from /simple/price.
    assert [o.available_at for o in found] == [NOW * NS]


async def test_history_stops_at_the_365_days_the_public_plans_reach() -> None:
    with FakeCoinGecko(now_s=NOW) as gecko:
        source = CoinGeckoSource(client(gecko.base_url))
        await source.fetch(fetch_request("btc", ("price",), now_s=NOW, history_days=2000, **BTC))
        await source.fetch(fetch_request("btc", ("price",), since_s=NOW - 900 * DAY, now_s=NOW, **BTC))
        assert [r.query["days"] for r in gecko.calls("/api/v3/coins")] == ["365", "365"]
