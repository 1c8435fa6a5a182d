"""The live feed's websocket path: the real ccxt.pro client against the fake Binance stream
(``tests/fakes/binance_ws.py``) with the fake REST server for warm-up and back-fill."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from engine.runtime.live_feed import LiveFeed, MarketSource, make_market_client
from engine.runtime.live_ws import StreamView
from tests.engine.runtime.helpers import ManualTimer, expected_row, five_minute, ms, settle
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_ws import FakeBinanceStream

MIN = 60_000
ETH_1M = ("ETH/BTC", "1m")
ETH_5M = ("ETH/BTC", "5m")
LTC_1M = ("LTC/BTC", "1m")
KLINES = "/api/v3/klines"


@pytest.fixture
def candles() -> pd.DataFrame:
    return walk_candles("2024-01-02", "2024-01-03")


@pytest.fixture
def ltc() -> pd.DataFrame:
    return walk_candles("2024-01-02", "2024-01-03", seed=2, start_price=0.002)


@pytest.fixture
def server(candles, ltc):
    with FakeBinance([FakeMarket.spot("ETH/BTC", candles), FakeMarket.spot("LTC/BTC", ltc)]) as fake:
        yield fake


@pytest.fixture
async def stream(server):
    async with FakeBinanceStream(server) as fake:
        yield fake


def pro_factory(stream: FakeBinanceStream):
    import ccxt.pro as ccxt_pro

    def make(source: MarketSource):
        return ccxt_pro.binance(stream.ccxt_config())

    return make


def make_feed(ws: FakeBinanceStream, timer, factory=None, **options) -> LiveFeed:
    binance = MarketSource("binance")
    return LiveFeed(
        routes={"ETH/BTC": binance, "LTC/BTC": binance},
        client_factory=factory or pro_factory(ws),
        timer=timer,
        **options,
    )


async def started(ws, server, warmups, clock: str, **options):
    timer = ManualTimer(server, ms(clock))
    feed = make_feed(ws, timer, **options)
    await feed.connect()
    await feed.prepare(warmups)
    return feed, timer


def hhmm(batch) -> str:
    return pd.Timestamp(batch.close_time, tz="UTC").strftime("%H:%M")


async def test_closed_candles_come_from_the_stream_and_the_forming_one_never(stream, server, candles, ltc):
    feed, timer = await started(stream, server, {ETH_1M: 2, ETH_5M: 1, LTC_1M: 2}, "2024-01-02 10:02:30")
    batches = feed.batches()
    pending = asyncio.ensure_future(anext(batches))
    await settle(lambda: all(feed.streaming(k) for k in (ETH_1M, ETH_5M, LTC_1M)))
    assert sorted(s[0] for s in stream.subscriptions) == [
        "ethbtc@kline_1m",
        "ethbtc@kline_5m",
        "ltcbtc@kline_1m",
    ]
    polled = len(server.calls(KLINES))

    got = []
    for minute in range(3, 9):
        # The forming candle is on the stream all along; only the next candle's arrival closes it.
        await asyncio.sleep(0.05)
        assert not pending.done()
        timer.set_server(ms(f"2024-01-02 10:{minute:02d}:00.2"))
        got.append(await asyncio.wait_for(pending, 3))
        pending = asyncio.ensure_future(anext(batches))
    assert [hhmm(b) for b in got] == ["10:03", "10:04", "10:05", "10:06", "10:07", "10:08"]
    assert [sorted(b.candles) for b in got] == [[ETH_1M, LTC_1M]] * 2 + [[ETH_1M, ETH_5M, LTC_1M]] + [
        [ETH_1M, LTC_1M]
    ] * 3
    for batch in got:
        open_ms = batch.close_time // 1_000_000 - MIN
        # Final values, not those the stream sent while the candle was forming.
        assert batch.candles[ETH_1M] == pytest.approx(expected_row(candles, open_ms))
        assert batch.candles[LTC_1M] == pytest.approx(expected_row(ltc, open_ms))
    assert got[2].candles[ETH_5M] == pytest.approx(expected_row(five_minute(candles), ms("2024-01-02 10:00")))
    assert len(server.calls(KLINES)) == polled  # not one REST request for them
    pending.cancel()
    await batches.aclose()
    await feed.close()


async def test_a_dropped_stream_is_back_filled_over_rest_then_the_stream_resumes(stream, server, candles):
    feed, timer = await started(stream, server, {ETH_1M: 2}, "2024-01-02 10:02:30")
    got = []

    async def collect():
        async for batch in feed.batches():
            got.append(batch)

    task = asyncio.create_task(collect())
    await settle(lambda: feed.streaming(ETH_1M))
    timer.set_server(ms("2024-01-02 10:03:00.2"))
    await settle(lambda: len(got) == 1)
    polled = len(server.calls(KLINES))

    await stream.drop()
    await settle(lambda: not feed.streaming(ETH_1M))
    # Three minutes later: the feed polls (the stream is down), the watch reconnects; the stream
    # starts with the forming 10:06 candle, so 10:03 to 10:05 can only come from REST.
    timer.set_server(ms("2024-01-02 10:06:00.6"))
    await settle(lambda: len(got) == 4 and feed.streaming(ETH_1M))
    assert stream.connects == 2
    backfill = len(server.calls(KLINES)) - polled
    assert backfill >= 1

    for minute in (7, 8):
        timer.set_server(ms(f"2024-01-02 10:{minute:02d}:00.2"))
        await settle(lambda minute=minute: len(got) == minute - 2)
    assert len(server.calls(KLINES)) - polled == backfill  # the stream again, not REST
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await feed.close()

    opens = [b.candles[ETH_1M][0] // 1_000_000 for b in got]
    assert opens == [ms("2024-01-02 10:02") + k * MIN for k in range(6)]  # every candle once, in order
    for batch in got:
        assert batch.candles[ETH_1M] == pytest.approx(
            expected_row(candles, batch.candles[ETH_1M][0] // 1_000_000)
        )


async def test_a_silent_stream_falls_back_to_rest_after_the_stream_wait(stream, server, candles):
    feed, timer = await started(stream, server, {ETH_1M: 2}, "2024-01-02 10:02:30", stream_wait=2.0)
    batches = feed.batches()
    pending = asyncio.ensure_future(anext(batches))
    await settle(lambda: feed.streaming(ETH_1M))
    polled = len(server.calls(KLINES))
    stream.silence()
    timer.set_server(ms("2024-01-02 10:03:01"))  # past the settle, within the stream wait: no request
    await asyncio.sleep(0.2)
    assert not pending.done() and len(server.calls(KLINES)) == polled
    timer.set_server(ms("2024-01-02 10:03:02.1"))
    batch = await asyncio.wait_for(pending, 3)
    assert hhmm(batch) == "10:03" and len(server.calls(KLINES)) == polled + 1
    assert batch.candles[ETH_1M] == pytest.approx(expected_row(candles, ms("2024-01-02 10:02")))

    # Once the stream speaks again, the candle REST already brought is not emitted twice.
    stream.silence(False)
    pending = asyncio.ensure_future(anext(batches))
    timer.set_server(ms("2024-01-02 10:04:00.2"))
    batch = await asyncio.wait_for(pending, 3)
    assert hhmm(batch) == "10:04" and len(server.calls(KLINES)) == polled + 1
    await batches.aclose()
    await feed.close()


async def test_without_watch_ohlcv_or_with_streams_off_the_feed_polls(stream, server):
    import ccxt.async_support as ccxt_async

    rest_only = lambda source: ccxt_async.binance(server.ccxt_config())  # noqa: E731
    for options in ({"factory": rest_only}, {"stream": False}):
        feed, timer = await started(stream, server, {ETH_1M: 1}, "2024-01-02 10:02:30", **options)
        batches = feed.batches()
        polled = len(server.calls(KLINES))
        timer.set_server(ms("2024-01-02 10:03:00.6"))
        batch = await asyncio.wait_for(anext(batches), 3)
        assert hhmm(batch) == "10:03" and not feed.streaming(ETH_1M)
        assert len(server.calls(KLINES)) == polled + 1
        await batches.aclose()
        await feed.close()
    assert stream.connects == 0


def test_stream_view_reports_closed_candles_in_order_and_holes():
    view = StreamView(step=MIN)
    row = lambda t, c: [t, 1.0, 2.0, 0.5, c, 10.0]  # noqa: E731
    view.update([row(0, 1.1)])
    assert view.closed_after(-MIN) == ([], False)  # forming: not closed
    view.update([row(0, 1.2), row(MIN, 1.3)])
    rows, hole = view.closed_after(-MIN)
    assert rows == [(0, 1.0, 2.0, 0.5, 1.2, 10.0)] and not hole  # its last values
    view.update([row(3 * MIN, 1.4)])  # 2 missing: a hole, 1 is closed (a later candle came)
    rows, hole = view.closed_after(0)
    assert [r[0] for r in rows] == [MIN * 1_000_000] and hole
    assert view.closed_after(2 * MIN) == ([], False)  # after a back-fill up to 2: nothing, no hole
    assert set(view.seen) == {3 * MIN}
    view.reset()
    assert view.closed_after(2 * MIN) == ([], False)


def test_market_client_is_the_pro_one_when_ccxt_has_it():
    client = make_market_client(MarketSource("binance"))
    assert client.has.get("watchOHLCV") and type(client).__module__.startswith("ccxt.pro")
