"""Order books, trades and exchange candles through the real ccxt client against the fake Binance
(``/api/v3/depth``, ``/api/v3/aggTrades``, ``/api/v3/klines``), stored by the FeedService."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.config._feeds import load_feeds
from engine.feeds.http import BadResponse, Banned, RateLimited, ServiceError, Unreachable
from engine.feeds.join import asof
from engine.feeds.observations import NS_PER_SECOND, to_arrays
from engine.feeds.service import FeedService
from engine.feeds.sources.base import FetchRequest
from engine.feeds.sources.orderbook import book_metrics
from engine.feeds.sources.trades import Trade, aggregate_trades
from engine.feeds.store import read_series
from engine.store import create_engine_for, session_factory, upgrade_async
from tests.fakes.binance_book import depth_weight
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance

T0_MS = int(pd.Timestamp("2024-01-02", tz="UTC").value // 1_000_000)
MIN = 60_000
SCOPE = "binance:ETH/BTC"

FEEDS = """\
feeds:
  book: {source: orderbook, depth: 2, band: 2}
  flow: {source: trades, large_trade: 0.09}
  flow2h: {source: trades, bucket: 2h}
  px: {source: exchange, pair: ETH/BTC, history_days: 2}
  eth: {source: [coingecko, exchange], coin: ethereum, pair: ETH/BTC, history_days: 1}
services:
  orderbook: {timeout: 1s}
"""


@pytest.fixture
async def sessions(tmp_path: Path):
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def server():
    candles = walk_candles("2023-12-29", "2024-01-03", start_price=0.05)
    with FakeBinance([FakeMarket.spot("ETH/BTC", candles)], now_ms=T0_MS + 3 * MIN + 5_000) as fake:
        yield fake


@pytest.fixture
async def service(tmp_path: Path, sessions, server: FakeBinance):
    (tmp_path / "feeds.yaml").write_text(FEEDS)
    feeds = load_feeds(tmp_path)
    assert not feeds.diagnostics, feeds.diagnostics
    kinds = ("orderbook", "trades", "exchange")
    svc = FeedService(
        feeds,
        sessions,
        root=tmp_path,
        base_urls=dict.fromkeys(kinds, server.url),
        clock=lambda: server.clock() * 1_000_000,
        retries=0,
    )
    yield svc
    await svc.aclose()


async def stored(sessions, key: str):
    async with sessions() as session:
        return await read_series(session, key)


# ---- order books ---------------------------------------------------------------------------------


def test_book_metrics_by_hand() -> None:
    bids = [("100", "2"), ("99", "3"), ("98.5", "5"), ("90", "100"), ("bad", "1"), ("97", None)]
    asks = [("102", "4"), ("101", "1"), ("110", "50")]
    top2 = book_metrics(bids, asks, depth=2, band_pct=2)
    assert top2 is not None
    assert top2.mid == 100.5
    assert top2.spread_pct == pytest.approx(1 / 100.5 * 100)
    assert top2.imbalance == 0.0  # 2 + 3 bid, 1 + 4 ask
    # Within 2 % of 100.5: bids down to 98.49, asks up to 102.51.
    assert top2.bid_depth == pytest.approx(100 * 2 + 99 * 3 + 98.5 * 5)
    assert top2.ask_depth == pytest.approx(101 * 1 + 102 * 4)
    top3 = book_metrics(bids, asks, depth=3, band_pct=2)
    assert top3 is not None and top3.imbalance == pytest.approx((10 - 55) / 65)
    assert book_metrics([], asks, 2, 1) is None
    assert book_metrics([("102", "1")], [("101", "1")], 2, 1) is None  # crossed


async def test_order_book_snapshots_are_stored_per_pair(
    service: FeedService, server: FakeBinance, sessions
) -> None:
    server.book.set_book(
        "ETH/BTC", bids=[("0.0500", "2"), ("0.0499", "3")], asks=[("0.0502", "1"), ("0.0503", "4")]
    )
    result = await service.refresh("book", scopes=(SCOPE,))
    assert result.ok and result.used == ["orderbook"], result.errors
    now_ns = server.clock() * 1_000_000
    imbalance = await stored(sessions, f"book.imbalance@{SCOPE}")
    assert imbalance.value.tolist() == [0.0]
    assert imbalance.event_time.tolist() == imbalance.available_at.tolist() == [now_ns]
    assert (await stored(sessions, f"book.mid@{SCOPE}")).value.tolist() == [pytest.approx(0.0501)]
    spread = (await stored(sessions, f"book.spread_pct@{SCOPE}")).value[0]
    assert spread == pytest.approx(0.0002 / 0.0501 * 100)
    # 100 levels asked for (the band needs more than the top `depth`), at Binance's weight for it.
    (call,) = server.calls("/api/v3/depth")
    assert call.params == {"symbol": "ETHBTC", "limit": "100"}
    client = service.source("orderbook").clients.get("binance")
    assert client.last_response_headers["x-mbx-used-weight-1m"] == str(depth_weight(100)) == "5"


async def test_order_book_faults_raise_the_feed_errors(service: FeedService, server: FakeBinance) -> None:
    server.book.set_book("ETH/BTC", bids=[("0.05", "1")], asks=[("0.051", "1")])
    source = service.source("orderbook")
    feed = service.feeds.feeds["book"]

    def request(*scopes: str) -> FetchRequest:
        return FetchRequest(feed, feed.members, None, server.clock() * 1_000_000, scopes=scopes)

    # An unknown pair beside a good one: the good one is still recorded; alone it is an error.
    got = await source.fetch(request(SCOPE, "binance:BTC/ETH"))
    assert {o.series.split("@")[1] for o in got} == {SCOPE}
    with pytest.raises(ServiceError, match="BTC/ETH"):
        await source.fetch(request("binance:BTC/ETH"))
    # Binance's -1121 from the server itself (a pair the market list still had).
    server.market_data.markets.pop(("ETHBTC", False))
    with pytest.raises(ServiceError, match="Invalid symbol"):
        await source.fetch(request(SCOPE))
    server.market_data.add(FakeMarket.spot("ETH/BTC", walk_candles("2024-01-01", "2024-01-03")))
    server.faults.add(
        "/api/v3/depth", body=b'{"lastUpdateId": 1, "bids": [["x", "1"]], "asks": 7}', status=200
    )
    with pytest.raises(BadResponse):
        await source.fetch(request(SCOPE))
    server.faults.add("/api/v3/depth", status=503)
    with pytest.raises(Exception) as info:
        await source.fetch(request(SCOPE))
    assert type(info.value).__name__ == "ServerError"
    server.faults.add("/api/v3/depth", delay=1.5)
    with pytest.raises(Unreachable, match="RequestTimeout"):
        await source.fetch(request(SCOPE))
    # A 429 with Retry-After: no call at all until the wait is over.
    server.faults.add("/api/v3/depth", status=429, retry_after=30)
    with pytest.raises(RateLimited) as limited:
        await source.fetch(request(SCOPE))
    assert limited.value.retry_after == 30
    before = len(server.calls("/api/v3/depth"))
    with pytest.raises(RateLimited, match="asked to wait"):
        await source.fetch(request(SCOPE))
    assert len(server.calls("/api/v3/depth")) == before
    source.clients._blocked.clear()
    server.faults.add("/api/v3/depth", status=418, retry_after=120)
    with pytest.raises(Banned, match="418"):
        await source.fetch(request(SCOPE))


async def test_a_failing_exchange_marks_the_source_degraded_and_recovers(tmp_path: Path, sessions) -> None:
    (tmp_path / "feeds.yaml").write_text(FEEDS)
    svc = FeedService(
        load_feeds(tmp_path), sessions, root=tmp_path, base_urls={"orderbook": "http://127.0.0.1:9"}
    )
    try:
        result = await svc.refresh("book", scopes=(SCOPE,))
        assert not result.ok and "127.0.0.1:9" in result.errors["orderbook"]
        assert svc.states()["orderbook"] == "degraded"
    finally:
        await svc.aclose()


# ---- trades ---------------------------------------------------------------------------------------


def test_trade_buckets_by_hand() -> None:
    trades = [
        Trade(T0_MS + 1_000, "buy", 1.5, 100.0, "1"),
        Trade(T0_MS + 2_000, "sell", 2.0, 100.0, "2"),
        Trade(T0_MS + 59_999, "buy", 0.5, 1000.0, "3"),  # 500 quote: large at 400
        Trade(T0_MS + 60_000, "sell", 1.0, 100.0, "4"),  # the next bucket
    ]
    buckets = aggregate_trades(trades, 60_000, large_trade=400)
    first, second = buckets[T0_MS].values(), buckets[T0_MS + MIN].values()
    assert first == {
        "taker_buy_volume": 2.0,
        "taker_sell_volume": 2.0,
        "trade_count": 3.0,
        "large_trades": 1.0,
        "taker_buy_ratio": 0.5,
    }
    assert second["taker_buy_ratio"] == 0.0 and second["taker_sell_volume"] == 1.0


async def test_trades_are_summed_per_complete_bucket(
    service: FeedService, server: FakeBinance, sessions
) -> None:
    add = server.book.add_trade
    add("ETH/BTC", T0_MS + 1 * MIN + 10, "0.05", "9", buyer_maker=False)  # before the first bucket
    add("ETH/BTC", T0_MS + 2 * MIN + 100, "0.05", "1.5", buyer_maker=True)  # buyer maker: taker SOLD
    add("ETH/BTC", T0_MS + 2 * MIN + 200, "0.05", "2", buyer_maker=False)
    add("ETH/BTC", T0_MS + 2 * MIN + 59_999, "0.05", "0.5", buyer_maker=False)
    add("ETH/BTC", T0_MS + 3 * MIN + 1, "0.05", "7", buyer_maker=False)  # the open bucket
    result = await service.refresh("flow", scopes=(SCOPE,))
    assert result.ok, result.errors
    sell = await stored(sessions, f"flow.taker_sell_volume@{SCOPE}")
    assert sell.value.tolist() == [1.5]
    assert sell.event_time.tolist() == [(T0_MS + 2 * MIN) * 1_000_000]
    # Known at the bucket's end plus 2 s (when the recorder fetches it): a close at 3m sees it not yet.
    assert sell.available_at.tolist() == [(T0_MS + 3 * MIN + 2_000) * 1_000_000]
    assert (await stored(sessions, f"flow.taker_buy_volume@{SCOPE}")).value.tolist() == [2.5]
    assert (await stored(sessions, f"flow.taker_buy_ratio@{SCOPE}")).value.tolist() == [2.5 / 4]
    assert (await stored(sessions, f"flow.trade_count@{SCOPE}")).value.tolist() == [3.0]
    # large_trade 0.09 BTC: 2 x 0.05 = 0.1 counts, 1.5 x 0.05 = 0.075 does not.
    assert (await stored(sessions, f"flow.large_trades@{SCOPE}")).value.tolist() == [1.0]
    # A minute later only the new trades are fetched, and the next bucket (with the open one's trade).
    first_calls = len(server.calls("/api/v3/aggTrades"))
    server.now_ms += MIN
    add("ETH/BTC", T0_MS + 3 * MIN + 30_000, "0.05", "1", buyer_maker=True)
    await service.refresh("flow", scopes=(SCOPE,))
    newer = server.calls("/api/v3/aggTrades")[first_calls:]
    assert len(newer) == 1 and int(newer[0].params["startTime"]) == T0_MS + 3 * MIN + 4_001
    assert (await stored(sessions, f"flow.taker_buy_volume@{SCOPE}")).value.tolist() == [2.5, 7.0]
    assert (await stored(sessions, f"flow.taker_sell_volume@{SCOPE}")).value.tolist() == [1.5, 1.0]
    # A quiet minute is a fact: zero volume, no ratio.
    server.now_ms += MIN
    await service.refresh("flow", scopes=(SCOPE,))
    assert (await stored(sessions, f"flow.trade_count@{SCOPE}")).value.tolist() == [3.0, 2.0, 0.0]
    assert len(await stored(sessions, f"flow.taker_buy_ratio@{SCOPE}")) == 2


async def test_full_pages_continue_from_the_last_millisecond_without_double_counting(
    service: FeedService, server: FakeBinance, sessions
) -> None:
    source = service.source("trades")
    source.page = 2
    for offset, qty in ((100, "1"), (200, "2"), (200, "4"), (200, "8"), (300, "16")):
        server.book.add_trade("ETH/BTC", T0_MS + 2 * MIN + offset, "0.05", qty, buyer_maker=False)
    await service.refresh("flow", scopes=(SCOPE,))
    assert (await stored(sessions, f"flow.taker_buy_volume@{SCOPE}")).value.tolist() == [31.0]
    assert (await stored(sessions, f"flow.trade_count@{SCOPE}")).value.tolist() == [5.0]
    calls = server.calls("/api/v3/aggTrades")
    # After the first full page, Binance is paged by aggregate-trade id (exact at equal times).
    assert len(calls) >= 3 and "fromId" in calls[1].params and "startTime" not in calls[1].params


async def test_malformed_trade_rows_are_skipped(service: FeedService, server: FakeBinance, sessions) -> None:
    server.book.add_trade("ETH/BTC", T0_MS + 2 * MIN + 100, "0.05", "1", buyer_maker=False)
    base = {"a": 1, "f": 1, "l": 1, "m": False, "M": True}
    server.book.add_raw_trade("ETH/BTC", {**base, "a": 7, "p": None, "q": "5", "T": T0_MS + 2 * MIN + 200})
    result = await service.refresh("flow", scopes=(SCOPE,))
    assert result.ok, result.errors
    assert (await stored(sessions, f"flow.taker_buy_volume@{SCOPE}")).value.tolist() == [1.0]


async def test_a_number_ccxt_cannot_read_fails_the_page_and_stores_nothing(
    service: FeedService, server: FakeBinance, sessions
) -> None:
    server.book.add_trade("ETH/BTC", T0_MS + 2 * MIN + 100, "0.05", "1", buyer_maker=False)
    row = {"a": 8, "p": "0.05", "q": "abc", "T": T0_MS + 2 * MIN + 300, "f": 1, "l": 1, "m": False, "M": True}
    server.book.add_raw_trade("ETH/BTC", row)
    server.book.add_raw_trade("ETH/BTC", {**row, "a": 9, "q": "5", "T": "soon"})
    result = await service.refresh("flow", scopes=(SCOPE,))
    assert "unreadable answer" in result.errors["trades"] and not result.used
    assert len(await stored(sessions, f"flow.taker_buy_volume@{SCOPE}")) == 0
    assert service.states()["trades"] == "degraded"


async def test_after_a_restart_trades_resume_from_the_last_stored_bucket(
    tmp_path: Path, service: FeedService, server: FakeBinance, sessions
) -> None:
    server.book.add_trade("ETH/BTC", T0_MS + 2 * MIN + 5, "0.05", "1", buyer_maker=False)
    await service.refresh("flow", scopes=(SCOPE,))  # stores the bucket [2m, 3m)
    server.now_ms += 3 * MIN
    server.book.add_trade("ETH/BTC", T0_MS + 4 * MIN + 5, "0.05", "3", buyer_maker=True)
    restarted = FeedService(
        service.feeds,
        sessions,
        root=tmp_path,
        base_urls={"trades": server.url},
        clock=lambda: server.clock() * 1_000_000,
    )
    try:
        await restarted.refresh("flow", scopes=(SCOPE,))
    finally:
        await restarted.aclose()
    assert int(server.calls("/api/v3/aggTrades")[-1].params["startTime"]) == T0_MS + 3 * MIN
    series = await stored(sessions, f"flow.taker_sell_volume@{SCOPE}")
    assert [e // 1_000_000 - T0_MS for e in series.event_time] == [2 * MIN, 3 * MIN, 4 * MIN, 5 * MIN]
    assert series.value.tolist() == [0.0, 0.0, 3.0, 0.0]


async def test_buckets_longer_than_an_hour_are_fetched_in_windows_binance_accepts(
    service: FeedService, server: FakeBinance, sessions
) -> None:
    server.now_ms = T0_MS + 4 * 60 * MIN + 5_000
    for hour in (2, 2.5, 3.9):
        server.book.add_trade("ETH/BTC", T0_MS + int(hour * 60 * MIN), "0.05", "1", buyer_maker=True)
    result = await service.refresh("flow2h", scopes=(SCOPE,))
    assert result.ok, result.errors
    windows = [
        int(c.params["endTime"]) - int(c.params["startTime"]) for c in server.calls("/api/v3/aggTrades")
    ]
    assert len(windows) == 3 and max(windows) < 3_600_000
    assert all(c.status == 200 for c in server.calls("/api/v3/aggTrades"))
    assert (await stored(sessions, f"flow2h.taker_sell_volume@{SCOPE}")).value.tolist() == [3.0]


async def test_trades_prefix_cut_at_t_gives_the_same_values_up_to_t(
    tmp_path: Path, server: FakeBinance
) -> None:
    """Recording stopped at t gives what recording on knew at t: the same buckets, the same values."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        at = T0_MS + int(rng.integers(0, 20 * MIN))
        qty = f"{rng.uniform(0.1, 3):.3f}"
        server.book.add_trade("ETH/BTC", at, "0.05", qty, buyer_maker=bool(rng.integers(0, 2)))
    (tmp_path / "feeds.yaml").write_text(FEEDS)

    async def record(until_min: int, name: str) -> list:
        engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / name}")
        await upgrade_async(engine)
        server.now_ms = T0_MS + 2 * MIN + 3_000
        svc = FeedService(
            load_feeds(tmp_path),
            session_factory(engine),
            root=tmp_path,
            base_urls={"trades": server.url},
            clock=lambda: server.clock() * 1_000_000,
        )
        out: list = []
        try:
            while server.now_ms <= T0_MS + until_min * MIN + 3_000:
                out.extend((await svc.refresh("flow", scopes=(SCOPE,))).observations)
                server.now_ms += MIN
        finally:
            await svc.aclose()
            await engine.dispose()
        return out

    cut = await record(10, "cut.db")
    full = await record(19, "full.db")
    t = (T0_MS + 10 * MIN + 3_000) * 1_000_000
    assert len(cut) > 20 and all(o.available_at <= t for o in cut)
    rows = lambda got: sorted((o.series, o.event_time, o.available_at, o.value) for o in got)  # noqa: E731
    assert rows(cut) == rows(o for o in full if o.available_at <= t)
    key = f"flow.taker_buy_volume@{SCOPE}"
    times = np.arange(T0_MS + 3 * MIN, T0_MS + 11 * MIN, MIN) * 1_000_000
    max_age = 600 * NS_PER_SECOND
    np.testing.assert_array_equal(
        asof(times, to_arrays(o for o in cut if o.series == key), max_age),
        asof(times, to_arrays(o for o in full if o.series == key), max_age),
    )


# ---- exchange candles --------------------------------------------------------------------------------


async def test_exchange_candles_give_prices_known_at_each_close(
    service: FeedService, server: FakeBinance, sessions
) -> None:
    server.now_ms = T0_MS + 10 * MIN  # the 00:00 candle of Jan 2 is still open
    result = await service.refresh("px")
    assert result.ok, result.errors
    price = await stored(sessions, "px.price")
    candles = walk_candles("2023-12-29", "2024-01-03", start_price=0.05)
    hourly = candles.resample("1h").agg({"close": "last", "volume": "sum"})
    closes_ns = price.event_time
    assert closes_ns[-1] == T0_MS * 1_000_000  # the last closed candle ended at 00:00
    assert (price.available_at == closes_ns).all()
    assert len(price) == 48  # history_days: 2
    expected = hourly["close"].reindex(pd.to_datetime(closes_ns - 3_600 * NS_PER_SECOND, utc=True))
    np.testing.assert_allclose(price.value, expected.to_numpy())
    volume = await stored(sessions, "px.volume_24h")
    last = hourly.loc[: pd.Timestamp(T0_MS - 3_600_000, unit="ms", tz="UTC")].tail(24)
    # The fake serves 8-decimal strings: compare at that precision.
    assert volume.value[-1] == pytest.approx(float((last["close"] * last["volume"]).sum()), rel=1e-6)


async def test_the_exchange_backs_up_a_price_service_that_is_down(
    tmp_path: Path, sessions, server: FakeBinance
) -> None:
    (tmp_path / "feeds.yaml").write_text(FEEDS)
    svc = FeedService(
        load_feeds(tmp_path),
        sessions,
        root=tmp_path,
        base_urls={"coingecko": "http://127.0.0.1:9", "exchange": server.url},
        clock=lambda: server.clock() * 1_000_000,
        retries=0,
    )
    try:
        result = await svc.refresh("eth")
    finally:
        await svc.aclose()
    assert "coingecko" in result.errors and result.used == ["exchange"]
    assert set(result.missing) == {"market_cap", "change_24h", "dominance"}
    price = await stored(sessions, "eth.price")
    assert len(price) == 24 and (price.available_at == price.event_time).all()


async def test_futures_pairs_are_read_from_the_futures_market(
    service: FeedService, server: FakeBinance, sessions
) -> None:
    futures = "XRP/USDT:USDT"
    server.market_data.add(
        FakeMarket.futures(futures, walk_candles("2024-01-01", "2024-01-03", start_price=0.6))
    )
    server.book.set_book(futures, bids=[("0.6000", "100")], asks=[("0.6002", "300")])
    server.book.add_trade(futures, T0_MS + 2 * MIN + 10, "0.6", "50", buyer_maker=True)
    scope = f"binance:{futures}"
    book = await service.refresh("book", scopes=(scope,))
    flow = await service.refresh("flow", scopes=(scope,))
    assert book.ok and flow.ok, (book.errors, flow.errors)
    assert (await stored(sessions, f"book.imbalance@{scope}")).value.tolist() == [-0.5]
    assert (await stored(sessions, f"flow.taker_sell_volume@{scope}")).value.tolist() == [50.0]
    assert server.calls("/fapi/v1/depth") and server.calls("/fapi/v1/aggTrades")


async def test_a_page_that_fails_half_way_loses_and_doubles_nothing(
    service: FeedService, server: FakeBinance, sessions
) -> None:
    service.source("trades").page = 2
    for offset, qty in ((100, "1"), (200, "2"), (300, "4"), (400, "8"), (500, "16")):
        server.book.add_trade("ETH/BTC", T0_MS + 2 * MIN + offset, "0.05", qty, buyer_maker=False)
    server.faults.add("/api/v3/aggTrades", status=429, retry_after=0, after=1)  # the second page
    result = await service.refresh("flow", scopes=(SCOPE,))
    assert "trades" in result.errors and not result.used
    assert len(await stored(sessions, f"flow.taker_buy_volume@{SCOPE}")) == 0
    server.now_ms += 1_000  # the next round: resumes after the first page
    result = await service.refresh("flow", scopes=(SCOPE,))
    assert result.ok, result.errors
    assert (await stored(sessions, f"flow.taker_buy_volume@{SCOPE}")).value.tolist() == [31.0]
    assert (await stored(sessions, f"flow.trade_count@{SCOPE}")).value.tolist() == [5.0]


async def test_a_rule_reads_the_recorded_trades_of_its_own_pair(
    tmp_path: Path, service: FeedService, server: FakeBinance, sessions
) -> None:
    from dsl import Source, compile_expression
    from engine.config._project import project_registry
    from engine.feeds.context import EvalContext
    from engine.feeds.store import SeriesReader

    for minute, maker in ((2, False), (3, True), (3, True)):
        server.book.add_trade("ETH/BTC", T0_MS + minute * MIN + 10, "0.05", "1", buyer_maker=maker)
    for _ in range(3):
        await service.refresh("flow", scopes=(SCOPE,))
        server.now_ms += MIN
    key = f"flow.taker_buy_ratio@{SCOPE}"
    reader = SeriesReader({key: await stored(sessions, key)})
    plan = compile_expression(Source("flow.taker_buy_ratio", "<rule>"), project_registry(tmp_path), "1m", {})
    index = pd.date_range(pd.Timestamp(T0_MS + 2 * MIN, unit="ms", tz="UTC"), periods=4, freq="1min")
    candles = pd.DataFrame(dict.fromkeys(("open", "high", "low", "close", "volume"), 1.0), index=index)
    got = plan.evaluate(candles, EvalContext("ETH/BTC", "binance", reader)).iloc[:, 0].tolist()
    # Candle 2m closes at 3m: its bucket is known at 3m + 2 s, so that close sees nothing yet; the
    # 3m close sees the 2m bucket (all taker buys), the 4m close the 3m bucket (all taker sells).
    assert np.isnan(got[0]) and got[1:3] == [1.0, 0.0]
    other = plan.evaluate(candles, EvalContext("BNB/BTC", "binance", reader)).iloc[:, 0]
    assert other.isna().all()  # another pair's series is its own
