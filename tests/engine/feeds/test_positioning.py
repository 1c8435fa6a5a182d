"""Binance futures positioning (top traders, the crowd, takers, open interest, funding) through the real
ccxt client against the fake Binance, stored point in time by the FeedService."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.config._feeds import load_feeds
from engine.feeds.join import asof
from engine.feeds.observations import NS_PER_SECOND
from engine.feeds.service import FeedService
from engine.feeds.sources.positioning import futures_symbol
from engine.feeds.store import read_series
from engine.store import create_engine_for, session_factory, upgrade_async
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_positioning import FUNDING_MS, FakePositioning, funding_at, ratio_at
from tests.fakes.binance_server import FakeBinance

NOW_MS = int(pd.Timestamp("2024-03-01 12:02:30", tz="UTC").value // 1_000_000)
STEP = 300_000
SCOPE = "binance:XRP/USDT:USDT"
FEEDS = """\
feeds:
  pos: {source: positioning, history_days: 2}
  pos1h: {source: positioning, bucket: 1h, history_days: 1}
  bad: {source: positioning, bucket: 3m}
  funding: {source: funding, history_days: 2}
"""


@pytest.fixture
async def sessions(tmp_path: Path):
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def server():
    candles = walk_candles("2024-02-29", "2024-03-01", start_price=0.5)
    markets = [FakeMarket.futures("XRP/USDT:USDT", candles), FakeMarket.futures("ETH/USDT:USDT", candles)]
    with FakeBinance(markets, now_ms=NOW_MS) as fake:
        yield fake


@pytest.fixture
def stats(server: FakeBinance) -> FakePositioning:
    return FakePositioning.install(server)


@pytest.fixture
async def service(tmp_path: Path, sessions, server: FakeBinance, stats: FakePositioning):
    (tmp_path / "feeds.yaml").write_text(FEEDS)
    feeds = load_feeds(tmp_path)
    assert not feeds.diagnostics, feeds.diagnostics
    svc = FeedService(
        feeds,
        sessions,
        root=tmp_path,
        base_urls={"positioning": server.url, "funding": server.url},
        clock=lambda: server.clock() * 1_000_000,
        retries=0,
    )
    yield svc
    await svc.aclose()


async def stored(sessions, key: str):
    async with sessions() as session:
        return await read_series(session, key)


def test_spot_pairs_read_their_linear_perpetual():
    assert futures_symbol("BTC/USDT") == "BTC/USDT:USDT"
    assert futures_symbol("XRP/USDT:USDT") == "XRP/USDT:USDT"


@pytest.mark.slow
async def test_two_days_of_every_series_are_stored_point_in_time(service, server, sessions):
    result = await service.refresh("pos", scopes=(SCOPE,))
    assert result.ok, result.errors
    newest = (NOW_MS // STEP) * STEP - STEP
    since = NOW_MS - 2 * 86_400_000  # history_days: 2
    expected_times = list(range(-(-since // STEP) * STEP, newest + 1, STEP))
    for member, endpoint in [
        ("top_position_ratio", "topLongShortPositionRatio"),
        ("top_account_ratio", "topLongShortAccountRatio"),
        ("global_account_ratio", "globalLongShortAccountRatio"),
        ("taker_buy_sell_ratio", "takerlongshortRatio"),
    ]:
        series = await stored(sessions, f"pos.{member}@{SCOPE}")
        times_ms = (series.event_time // 1_000_000).tolist()
        assert times_ms == expected_times, member
        assert series.value.tolist() == [ratio_at(endpoint, t) for t in times_ms]
        # Known at the end of its 5m period plus the 1m lag: never before.
        lag = 60 * NS_PER_SECOND
        assert (series.available_at == series.event_time + STEP * 1_000_000 + lag).all()
    interest = await stored(sessions, f"pos.open_interest@{SCOPE}")
    assert interest.value[-1] == pytest.approx(1_000_000 * ratio_at("openInterestHist", newest))
    value = await stored(sessions, f"pos.open_interest_value@{SCOPE}")
    assert value.value[-1] == pytest.approx(500_000 * ratio_at("openInterestHist", newest))
    assert (await service.refresh("funding", scopes=(SCOPE,))).ok
    funding = await stored(sessions, f"funding.rate@{SCOPE}")
    funding_ms = (funding.event_time // 1_000_000).tolist()
    assert funding_ms == list(range(funding_ms[0], (NOW_MS // FUNDING_MS) * FUNDING_MS + 1, FUNDING_MS))
    assert (
        len(funding_ms) == 6
        and funding_ms[0] >= since
        and funding.value.tolist() == [pytest.approx(funding_at(t)) for t in funding_ms]
    )
    # Pages of at most 500 rows, through the symbol's market id.
    calls = server.calls("/futures/data/topLongShortPositionRatio")
    assert len(calls) == 2 and {c.params["symbol"] for c in calls} == {"XRPUSDT"}
    assert all(int(c.params["limit"]) == 500 and c.params["period"] == "5m" for c in calls)


async def test_a_refresh_continues_from_the_last_row(service, server, sessions):
    assert (await service.refresh("pos", scopes=(SCOPE,))).ok
    before = await stored(sessions, f"pos.taker_buy_sell_ratio@{SCOPE}")
    server.now_ms = NOW_MS + 3 * STEP
    server.requests.clear()
    assert (await service.refresh("pos", scopes=(SCOPE,))).ok
    after = await stored(sessions, f"pos.taker_buy_sell_ratio@{SCOPE}")
    assert len(after.value) == len(before.value) + 3
    (call,) = server.calls("/futures/data/takerlongshortRatio")
    assert int(call.params["startTime"]) == int(before.event_time[-1] // 1_000_000) + 1


async def test_rules_see_a_value_only_once_its_period_is_over(service, sessions):
    assert (await service.refresh("pos1h", scopes=(SCOPE,))).ok
    series = await stored(sessions, f"pos1h.top_position_ratio@{SCOPE}")
    hour = int(series.event_time[-1])
    closes = np.array([hour + 30 * 60 * NS_PER_SECOND, hour + 61 * 60 * NS_PER_SECOND])
    joined = asof(closes, series, 9 * 3600 * NS_PER_SECOND)
    assert joined[0] == series.value[-2]  # mid-hour: the previous hour's figure
    assert joined[1] == series.value[-1]


async def test_empty_history_unknown_symbol_and_bad_period(service, stats, sessions):
    stats.clear("ETHUSDT")  # a market just listed: no statistics yet
    result = await service.refresh("pos", scopes=("binance:ETH/USDT:USDT",))
    assert result.ok, result.errors
    assert not (await stored(sessions, "pos.top_position_ratio@binance:ETH/USDT:USDT")).value.size
    unknown = await service.refresh("pos", scopes=("binance:DOGE/USDT:USDT",))
    assert not unknown.ok and "DOGE/USDT:USDT" in unknown.errors["positioning"]
    bad = await service.refresh("bad", scopes=(SCOPE,))
    assert not bad.ok and "statistics period" in bad.errors["positioning"]


async def test_exchange_errors_reach_the_feed_as_its_own_error_kinds(service, server):
    server.faults.add("/futures/data/openInterestHist", status=429, retry_after=30)
    limited = await service.refresh("pos", scopes=(SCOPE,))
    assert not limited.ok and "429" in limited.errors["positioning"]
    # While Binance asked to wait, no call at all (asking early prolongs a ban).
    server.requests.clear()
    waiting = await service.refresh("pos", scopes=(SCOPE,))
    assert "asked to wait" in waiting.errors["positioning"] and not server.requests


async def test_error_shapes_of_the_fake_over_plain_http(server, stats):
    import httpx

    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.get(
            "/futures/data/topLongShortPositionRatio", params={"symbol": "NOPE", "period": "5m"}
        )
        assert answer.status_code == 400 and answer.json() == {"code": -1121, "msg": "Invalid symbol."}
        answer = await http.get(
            "/futures/data/takerlongshortRatio", params={"symbol": "XRPUSDT", "period": "3m"}
        )
        assert answer.status_code == 400 and answer.json()["code"] == -1120
        rows = (
            await http.get("/futures/data/openInterestHist", params={"symbol": "XRPUSDT", "period": "1h"})
        ).json()
        assert len(rows) == 30 and isinstance(rows[0]["sumOpenInterest"], str)  # default limit, strings
        old = NOW_MS - 40 * 86_400_000  # beyond the 30 days kept: nothing
        rows = await http.get(
            "/futures/data/globalLongShortAccountRatio",
            params={"symbol": "XRPUSDT", "period": "5m", "startTime": old, "endTime": old + 3_600_000},
        )
        assert rows.json() == []


@pytest.mark.slow
async def test_a_consensus_shift_rule_reads_the_stored_ratios(tmp_path, service, sessions):
    from dsl import Source, compile_expression
    from engine.config._project import project_registry
    from engine.feeds.context import EvalContext
    from engine.feeds.store import SeriesReader

    assert (await service.refresh("pos", scopes=(SCOPE,))).ok
    keys = [f"pos.{m}@{SCOPE}" for m in ("top_position_ratio", "global_account_ratio")]
    reader = SeriesReader({key: await stored(sessions, key) for key in keys})
    registry = project_registry(tmp_path)  # the feeds.yaml of the service fixture
    rule = "consensus_shift(pos.top_position_ratio, pos.global_account_ratio)"
    plan = compile_expression(Source(rule, "<rule>"), registry, "5m", {})
    index = pd.date_range(
        pd.Timestamp(NOW_MS - 2 * 86_400_000, unit="ms", tz="UTC"), periods=560, freq="5min"
    )
    candles = pd.DataFrame(dict.fromkeys(("open", "high", "low", "close", "volume"), 1.0), index=index)
    values = plan.evaluate(candles, EvalContext("XRP/USDT:USDT", reader=reader)).iloc[:, 0].to_numpy()
    # By hand from the fake's waves: the candle closing at c sees the rows of periods ended by c - 1m.
    closes = (index.as_unit("ns").asi8 // 1_000_000) + STEP
    seen = (closes - 60_000 - STEP) // STEP * STEP  # the newest period start known at each close
    top = np.array([ratio_at("topLongShortPositionRatio", t) for t in seen])
    crowd = np.array([ratio_at("globalLongShortAccountRatio", t) for t in seen])
    up = (top > 1) & (np.r_[np.nan, top[:-1]] <= 1) & (crowd < 1)
    down = (top < 1) & (np.r_[np.nan, top[:-1]] >= 1) & (crowd > 1)
    expected = up.astype(float) - down.astype(float)
    first = int(np.argmax(~np.isnan(values)))
    np.testing.assert_array_equal(values[first + 1 :], expected[first + 1 :])
    assert (values == 1).sum() >= 1 and (values == -1).sum() >= 1
