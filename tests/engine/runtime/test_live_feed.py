"""The live closed-candle feed against the fake Binance: closed candles only, one batch per moment,
back-fill after an outage, paginated warm-up history, and ``run_engine`` without a replay."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from engine.runtime.live_feed import LiveFeed, MarketDataError, MarketSource, make_market_client
from tests.engine.runtime.helpers import (
    FLIP_BOT,
    FLIP_STRATEGY,
    FastTimer,
    ManualTimer,
    client_factory,
    expected_row,
    five_minute,
    live_run_options,
    ms,
    settle,
)
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance

MIN = 60_000
ETH_1M = ("ETH/BTC", "1m")
ETH_5M = ("ETH/BTC", "5m")
LTC_1M = ("LTC/BTC", "1m")


def make_feed(server: FakeBinance, timer, **options) -> LiveFeed:
    binance = MarketSource("binance")
    return LiveFeed(
        routes={"ETH/BTC": binance, "LTC/BTC": binance},
        client_factory=client_factory(server),
        timer=timer,
        **options,
    )


async def test_emits_closed_candles_only_one_batch_per_close_using_the_exchange_clock(server, candles):
    # The local clock is 7 s behind the exchange: only the measured offset lets the 10:08 candle out
    # at exchange time 10:08:02 (local 10:07:55).
    skew = 7_000
    timer = ManualTimer(server, ms("2024-01-02 10:02:30"), skew)
    feed = make_feed(server, timer)
    await feed.connect()
    assert feed.offsets["binance"] == pytest.approx(skew)
    assert feed.start == pd.Timestamp("2024-01-02 10:02:30", tz="UTC")
    await feed.prepare({ETH_1M: 3, ETH_5M: 2})

    history = feed.history(ETH_1M, feed.start.value, 3)
    pd.testing.assert_frame_equal(
        history, candles.loc["2024-01-02 09:59":"2024-01-02 10:01"], check_freq=False
    )
    h5 = feed.history(ETH_5M, feed.start.value, 2)
    assert list(h5.index) == list(pd.to_datetime(["2024-01-02 09:50", "2024-01-02 09:55"], utc=True))
    assert h5.dtypes.eq("float64").all() and h5.index.name == "date"

    batches = feed.batches()
    pending = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0.1)
    assert not pending.done()  # nothing closed since the start (10:03 is still forming)

    calls = len(server.calls("/api/v3/klines"))
    timer.set_server(ms("2024-01-02 10:08:02"), skew)
    got = [await asyncio.wait_for(pending, 3)]
    for _ in range(5):
        got.append(await asyncio.wait_for(anext(batches), 3))
    closes = [pd.Timestamp(b.close_time, tz="UTC").strftime("%H:%M") for b in got]
    assert closes == ["10:03", "10:04", "10:05", "10:06", "10:07", "10:08"]
    assert [sorted(b.candles) for b in got] == [[ETH_1M]] * 2 + [[ETH_1M, ETH_5M]] + [[ETH_1M]] * 3
    for batch in got:
        open_ms = batch.close_time // 1_000_000 - MIN
        assert batch.candles[ETH_1M] == pytest.approx(expected_row(candles, open_ms))
    assert got[2].candles[ETH_5M] == pytest.approx(expected_row(five_minute(candles), ms("2024-01-02 10:00")))
    assert feed.clock == got[-1].close_time
    assert len(server.calls("/api/v3/klines")) - calls == 2  # one request per series for all of them

    # The forming 10:09 candle is served by the exchange but never emitted.
    pending = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0.2)
    assert not pending.done()
    timer.set_server(ms("2024-01-02 10:09:01"), skew)
    batch = await asyncio.wait_for(pending, 3)
    assert pd.Timestamp(batch.close_time, tz="UTC") == pd.Timestamp("2024-01-02 10:09", tz="UTC")
    await batches.aclose()
    await feed.close()


async def test_series_of_one_moment_wait_for_each_other_within_the_grace(server, candles):
    timer = ManualTimer(server, ms("2024-01-02 10:00:30"))
    feed = make_feed(server, timer, grace=3.0)
    await feed.connect()
    await feed.prepare({ETH_1M: 1, LTC_1M: 1})
    batches = feed.batches()
    # LTC's klines fail twice: within the grace the ETH candle waits for it ...
    server.faults.add("/api/v3/klines", status=503, after=1, times=1)
    pending = asyncio.ensure_future(anext(batches))
    timer.set_server(ms("2024-01-02 10:01:00.6"))
    await asyncio.sleep(0.2)
    assert not pending.done()
    timer.set_server(ms("2024-01-02 10:01:02.5"))  # the retry (backoff 1 s) succeeds
    batch = await asyncio.wait_for(pending, 3)
    assert sorted(batch.candles) == [ETH_1M, LTC_1M]

    # ... and past the grace the moment goes without the late series, which follows on its own batch.
    server.faults.add("/api/v3/klines", status=500, after=1, times=3)
    pending = asyncio.ensure_future(anext(batches))
    timer.set_server(ms("2024-01-02 10:02:00.6"))
    await asyncio.sleep(0.2)
    timer.set_server(ms("2024-01-02 10:02:03.5"))
    first = await asyncio.wait_for(pending, 3)
    assert len(first.candles) == 1 and first.close_time == ms("2024-01-02 10:02") * 1_000_000
    pending = asyncio.ensure_future(anext(batches))
    for step in range(1, 12):
        timer.set_server(ms("2024-01-02 10:02:03.5") + step * 2_000)
        await asyncio.sleep(0.05)
        if pending.done():
            break
    late = await asyncio.wait_for(pending, 3)
    assert late.close_time == first.close_time and set(late.candles) | set(first.candles) == {ETH_1M, LTC_1M}
    await batches.aclose()
    await feed.close()


async def test_an_outage_is_back_filled_once_in_order_and_rate_limits_are_honoured(server, candles, caplog):
    timer = ManualTimer(server, ms("2024-01-02 10:02:30"))
    feed = make_feed(server, timer)
    await feed.connect()
    await feed.prepare({ETH_1M: 10})
    got = []

    async def collect():
        async for batch in feed.batches():
            got.append(batch)

    server.faults.add("/api/v3/klines", status=429, retry_after=150)
    server.faults.add("/api/v3/klines", status=500, times=3)
    server.faults.add("/api/v3/klines", drop=True, times=2)  # aiohttp resends a dropped request once
    task = asyncio.create_task(collect())
    statuses = []
    minute = ms("2024-01-02 10:03:00.6")
    for step in range(12):
        timer.set_server(minute + step * MIN)
        await asyncio.sleep(0.1)
        statuses.append([c.status for c in server.calls("/api/v3/klines")])
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await feed.close()

    # The 429 asked for 150 s: no poll at 10:04:00 and 10:05:00, the next one at 10:06:00.
    polls = [len(s) for s in statuses]
    assert polls[0] == polls[1] == polls[2] and polls[3] == polls[2] + 1
    failed = [c.status for c in server.calls("/api/v3/klines")]
    assert failed.count(429) == 1 and failed.count(500) == 3 and failed.count(0) == 2
    opens = [b.candles[ETH_1M][0] // 1_000_000 for b in got]
    assert opens == [ms("2024-01-02 10:02") + k * MIN for k in range(12)]  # every candle, once, in order
    assert [b.close_time // 1_000_000 for b in got] == [o + MIN for o in opens]
    # The back-filled candles come out marked late (no entries on them), the ones on time after it not.
    lates = [b.late for b in got]
    assert lates[0] and not lates[-1] and lates == sorted(lates, reverse=True)
    for batch in got:
        assert batch.candles[ETH_1M] == pytest.approx(
            expected_row(candles, batch.candles[ETH_1M][0] // 1_000_000)
        )


async def test_history_pages_across_the_exchange_limit(server, candles):
    timer = ManualTimer(server, ms("2024-01-03 12:00:20"))
    feed = make_feed(server, timer)
    await feed.connect()
    before = len(server.calls("/api/v3/klines"))
    await feed.prepare({ETH_1M: 2500})
    assert len(server.calls("/api/v3/klines")) - before == 3  # 1000 + 1000 + 501 candles
    history = feed.history(ETH_1M, feed.start.value, 2500)
    expected = candles.loc[: pd.Timestamp("2024-01-03 11:59", tz="UTC")].iloc[-2500:]
    pd.testing.assert_frame_equal(history, expected, check_freq=False)
    # Earlier windows come from memory too, while the cache reaches back far enough.
    until = pd.Timestamp("2024-01-03 11:00", tz="UTC").value
    calls = len(server.calls("/api/v3/klines"))
    pd.testing.assert_frame_equal(
        feed.history(ETH_1M, until, 100),
        candles.loc["2024-01-03 09:20":"2024-01-03 10:59"],
        check_freq=False,
    )
    assert len(server.calls("/api/v3/klines")) == calls

    # A series never prepared (a bot added by a reload) is fetched on the spot, paginated as well.
    history = feed.history(LTC_1M, feed.start.value, 1200)
    assert len(history) == 1200 and history.index[-1] == pd.Timestamp("2024-01-03 11:59", tz="UTC")
    assert feed.history(LTC_1M, feed.start.value, 0).empty
    await feed.close()


async def test_connect_fails_clearly_when_the_exchange_is_unreachable_or_lacks_a_pair(server):
    timer = ManualTimer(server, ms("2024-01-02 10:00"))
    feed = make_feed(server, timer, backoff=0.001)
    server.faults.add("/api/v3/time", status=503, times=3)
    with pytest.raises(MarketDataError, match="cannot reach binance for market data: ExchangeNotAvailable"):
        await feed.connect()
    await feed.close()
    feed = LiveFeed(
        routes={"DOGE/BTC": MarketSource("binance")}, client_factory=client_factory(server), timer=timer
    )
    with pytest.raises(MarketDataError, match="binance has no market DOGE/BTC"):
        await feed.connect()
    await feed.close()


async def test_run_engine_without_replay_trades_on_live_candles_until_stopped(tmp_path, server, candles):
    from sqlalchemy import select

    from engine.runtime import run_engine
    from engine.store import create_engine_for, session_factory
    from engine.store.models import EquitySnapshot, Trade

    (tmp_path / "strategies").mkdir()
    (tmp_path / "bots").mkdir()
    (tmp_path / "strategies" / "flip.yaml").write_text(FLIP_STRATEGY)
    (tmp_path / "bots" / "flip.yaml").write_text(FLIP_BOT)
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    # One exchange minute every 100 ms of wall time.
    options = live_run_options(tmp_path, server, FastTimer(server, ms("2024-01-02 10:00:30"), speed=600))
    runtimes = []
    task = asyncio.create_task(run_engine(options, on_runtime=runtimes.append))
    await settle(
        lambda: runtimes and "flip" in runtimes[0].slots and runtimes[0].runner("flip").view.candles >= 30, 30
    )
    runtimes[0].request_stop()
    runtime = await asyncio.wait_for(task, 10)
    start = runtime.feed.start
    assert pd.Timestamp("2024-01-02 10:00:30", tz="UTC") < start < pd.Timestamp("2024-01-02 11:30", tz="UTC")

    engine = create_engine_for(url)
    try:
        async with session_factory(engine)() as session:
            trades = list((await session.execute(select(Trade).order_by(Trade.id))).scalars())
            equity = list(
                (await session.execute(select(EquitySnapshot.time).order_by(EquitySnapshot.id))).scalars()
            )
    finally:
        await engine.dispose()
    assert len(trades) >= 3
    times = [pd.Timestamp(t, tz="UTC") if pd.Timestamp(t).tz is None else pd.Timestamp(t) for t in equity]
    assert len(times) >= 30
    # One snapshot per live candle, consecutive from the first candle closing after the start.
    assert times == list(pd.date_range(times[0], periods=len(times), freq="1min"))
    assert times[0] == start.floor("1min")  # the candle open at the start is the first one traded
    for trade in trades:
        opened = pd.Timestamp(trade.open_time).tz_localize(None)
        assert opened > start.tz_localize(None)
        # Entries fill at the next candle's open, as in the backtest.
        assert float(trade.open_price) == pytest.approx(
            float(candles.loc[pd.Timestamp(opened, tz="UTC"), "open"]), rel=1e-9
        )


def test_bots_pairs_are_routed_to_their_exchanges_with_their_modes(caplog):
    from types import SimpleNamespace

    def bot(exchange: str, mode: str, market: str, pairs: list[str]):
        config = SimpleNamespace(name=exchange, mode=mode, market=market)
        return SimpleNamespace(model=SimpleNamespace(exchange=config, pairs=pairs))

    feed = LiveFeed.for_bots(
        [
            bot("binance", "paper", "spot", ["ETH/BTC"]),
            bot("binance", "live", "spot", ["LTC/BTC"]),
            bot("binanceusdm", "testnet", "futures", ["XRP/USDT:USDT"]),
            bot("kraken", "paper", "spot", ["ETH/BTC"]),  # same pair elsewhere: the first bot's exchange
        ]
    )
    assert feed.routes == {
        "ETH/BTC": MarketSource("binance"),
        "LTC/BTC": MarketSource("binance"),
        "XRP/USDT:USDT": MarketSource("binanceusdm", testnet=True, futures=True),
    }
    assert feed.modes == {"binance": "live", "binanceusdm:testnet:futures": "testnet", "kraken": "paper"}
    assert any("ETH/BTC is traded on binance and kraken" in r.getMessage() for r in caplog.records)
    client = make_market_client(MarketSource("binanceusdm", testnet=True, futures=True))
    assert client.isSandboxModeEnabled and client.options["defaultType"] == "future"
    with pytest.raises(MarketDataError, match="ccxt has no exchange 'nosuchexchange'"):
        make_market_client(MarketSource("nosuchexchange"))


async def test_an_exchange_hole_is_passed_over_once_candles_resume():
    gappy = walk_candles("2024-01-02", "2024-01-03", outages=(("2024-01-02 10:05", "2024-01-02 10:08"),))
    with FakeBinance([FakeMarket.spot("ETH/BTC", gappy)]) as server:
        timer = ManualTimer(server, ms("2024-01-02 10:02:30"))
        feed = LiveFeed(
            routes={"ETH/BTC": MarketSource("binance")}, client_factory=client_factory(server), timer=timer
        )
        await feed.connect()
        await feed.prepare({ETH_1M: 5})
        got = []

        async def collect():
            async for batch in feed.batches():
                got.append(batch)

        task = asyncio.create_task(collect())
        for second in range(30, 11 * 60, 10):  # every 10 s from 10:03:00 to 10:13:20
            timer.set_server(ms("2024-01-02 10:02:30") + second * 1000)
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await feed.close()
    opens = [pd.Timestamp(b.candles[ETH_1M][0], tz="UTC").strftime("%H:%M") for b in got]
    assert opens == ["10:02", "10:03", "10:04", "10:08", "10:09", "10:10", "10:11", "10:12"]


async def test_a_pair_added_later_on_another_exchange_is_fetched_there_on_that_clock(server, candles):
    # Both "exchanges" are the fake; the second one is reached only when a reloaded bot needs it.
    skew = 4_000
    timer = ManualTimer(server, ms("2024-01-02 10:00:30"), skew)
    other = MarketSource("binance", testnet=True)
    made = []

    def factory(source: MarketSource):
        made.append(source.id)
        return client_factory(server)(source)

    feed = LiveFeed(
        routes={"ETH/BTC": MarketSource("binance")},
        client_factory=factory,
        resolve=lambda pair: (other, "testnet") if pair == "LTC/BTC" else None,
        timer=timer,
    )
    await feed.connect()
    await feed.prepare({ETH_1M: 1})
    assert made == ["binance"] and set(feed.offsets) == {"binance"}
    batches = feed.batches()
    timer.set_server(ms("2024-01-02 10:01:01"), skew)
    first = await asyncio.wait_for(anext(batches), 3)
    assert sorted(first.candles) == [ETH_1M]

    feed.add(LTC_1M)  # a bot added by hot reload
    assert feed.routes["LTC/BTC"] == other and feed.modes == {"binance:testnet": "testnet"}
    timer.set_server(ms("2024-01-02 10:02:01"), skew)
    second = await asyncio.wait_for(anext(batches), 3)
    assert sorted(second.candles) == [ETH_1M, LTC_1M]
    assert made == ["binance", "binance:testnet"] and feed.offsets["binance:testnet"] == pytest.approx(skew)
    await batches.aclose()
    await feed.close()
