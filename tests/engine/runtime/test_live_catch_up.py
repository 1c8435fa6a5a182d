"""Restart catch-up and removal of series in the live feed, against the fake Binance (real ccxt client,
manual clock): ``LiveFeed.rewind`` emits the candles a restored bot missed, in order and once, within
``max_catch_up``; ``LiveFeed.remove`` ends a series' polls and stream; ``ReplayFeed`` offers both."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pandas as pd
import pytest

from engine.runtime.feed import ReplayFeed
from engine.runtime.live_feed import LiveFeed, MarketSource
from tests.engine.runtime.helpers import ManualTimer, client_factory, expected_row, ms, settle
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_ws import FakeBinanceStream

NS = 1_000_000
MIN = 60_000
ETH_1M = ("ETH/BTC", "1m")
LTC_1M = ("LTC/BTC", "1m")
KLINES = "/api/v3/klines"
WAIT = 15.0  # seconds of wall time a condition may take on a loaded machine (met at once otherwise)


async def started(server, clock: str, warmups, factory=None, **options) -> tuple[LiveFeed, ManualTimer]:
    timer = ManualTimer(server, ms(clock))
    binance = MarketSource("binance")
    feed = LiveFeed(
        routes={"ETH/BTC": binance, "LTC/BTC": binance},
        client_factory=factory or client_factory(server),
        timer=timer,
        **options,
    )
    await feed.connect()
    await feed.prepare(warmups)
    return feed, timer


class Collector:
    """Drains the feed's batches in a task, as the runtime's pump does."""

    def __init__(self, feed: LiveFeed) -> None:
        self.feed, self.got = feed, []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for batch in self.feed.batches():
            self.got.append(batch)

    def opens(self, key=ETH_1M) -> list[int]:
        return [b.candles[key][0] // NS for b in self.got if key in b.candles]

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.feed.close()


def klines_for(server: FakeBinance, symbol: str, since: int = 0) -> int:
    return sum(1 for c in server.calls(KLINES)[since:] if c.params.get("symbol") == symbol)


async def test_a_rewound_series_emits_the_missed_candles_late_then_the_live_ones(server, candles):
    # The engine comes back at 10:30:30; the bot's checkpoint is the 09:59 candle: 10:00 to 10:29 missed.
    feed, timer = await started(server, "2024-01-02 10:30:30", {ETH_1M: 50}, page_limit=10)
    since = ms("2024-01-02 09:59") * NS
    assert feed.rewind(ETH_1M, since) == since  # nothing skipped
    before = len(server.calls(KLINES))
    run = Collector(feed)
    await settle(lambda: len(run.got) == 30, WAIT)
    catch_up = len(server.calls(KLINES)) - before
    for minute in (31, 32, 33):
        timer.set_server(ms(f"2024-01-02 10:{minute}:00.6"))
        await settle(lambda minute=minute: len(run.got) == minute, WAIT)
    await run.stop()

    opens = run.opens()
    assert opens == [ms("2024-01-02 10:00") + k * MIN for k in range(33)]  # in order, no gap, none twice
    assert [b.close_time // NS for b in run.got] == [o + MIN for o in opens]
    # Past due when handed out (exits only on an exchange); the 10:29 candle had just closed.
    assert [b.late for b in run.got] == [True] * 29 + [False] * 4
    assert catch_up >= 3  # 30 candles at 10 a page: paged
    for batch in run.got:
        assert batch.candles[ETH_1M] == pytest.approx(expected_row(candles, batch.candles[ETH_1M][0] // NS))


async def test_bots_sharing_a_series_get_it_from_the_oldest_checkpoint_once(server):
    feed, timer = await started(server, "2024-01-02 10:30:30", {ETH_1M: 5, LTC_1M: 5})
    older, newer = ms("2024-01-02 10:09") * NS, ms("2024-01-02 10:19") * NS
    # Whichever bot restores first, the series goes back to the older checkpoint, not forward again.
    assert feed.rewind(ETH_1M, newer) == newer
    assert feed.rewind(ETH_1M, older) == older
    assert feed.rewind(ETH_1M, newer) == newer
    run = Collector(feed)
    await settle(lambda: len(run.opens()) == 20, WAIT)
    timer.set_server(ms("2024-01-02 10:31:00.6"))
    await settle(lambda: len(run.opens()) == 21, WAIT)
    assert run.opens() == [ms("2024-01-02 10:10") + k * MIN for k in range(21)]
    assert run.opens(LTC_1M) == [ms("2024-01-02 10:30")]  # not rewound: live only
    assert run.got[-1].candles.keys() == {ETH_1M, LTC_1M}  # the live moment travels as one batch

    # A bot joining later with an older checkpoint gets no candle re-emitted: the feed resumes after
    # the last one it handed out, and says so.
    assert feed.rewind(ETH_1M, ms("2024-01-02 10:20") * NS) == ms("2024-01-02 10:30") * NS
    timer.set_server(ms("2024-01-02 10:32:00.6"))
    await settle(lambda: len(run.opens()) == 22, WAIT)
    await asyncio.sleep(0.1)
    await run.stop()
    assert run.opens() == [ms("2024-01-02 10:10") + k * MIN for k in range(22)]


async def test_a_catch_up_beyond_the_cap_starts_at_the_cap_with_a_warning(server, caplog):
    feed, _ = await started(server, "2024-01-02 10:30:30", {ETH_1M: 5}, max_catch_up=20)
    caplog.set_level(logging.WARNING, logger="engine.runtime.feed")
    resumed = feed.rewind(ETH_1M, ms("2024-01-02 09:29") * NS)  # 60 candles missed
    assert resumed == ms("2024-01-02 10:09") * NS  # the caller re-seeds its bot's windows up to it
    assert any(
        "ETH/BTC 1m: 60 candles closed since 2024-01-02 09:29; catching up on the last 20 only "
        "(from 2024-01-02 10:10)" in r.getMessage()
        for r in caplog.records
    )
    run = Collector(feed)
    await settle(lambda: len(run.got) == 20, WAIT)
    await asyncio.sleep(0.1)
    await run.stop()
    assert run.opens() == [ms("2024-01-02 10:10") + k * MIN for k in range(20)]


async def test_a_removed_series_is_no_longer_polled_nor_emitted(server):
    feed, timer = await started(server, "2024-01-02 10:30:30", {ETH_1M: 5, LTC_1M: 5})
    run = Collector(feed)
    timer.set_server(ms("2024-01-02 10:31:00.6"))
    await settle(lambda: len(run.got) == 1, WAIT)
    assert run.got[0].candles.keys() == {ETH_1M, LTC_1M}
    feed.remove(LTC_1M)
    feed.remove(LTC_1M)  # idempotent
    mark = len(server.calls(KLINES))
    for minute in (32, 33, 34):
        timer.set_server(ms(f"2024-01-02 10:{minute}:00.6"))
        await settle(lambda minute=minute: len(run.got) == minute - 30, WAIT)
    assert klines_for(server, "LTCBTC", mark) == 0 and klines_for(server, "ETHBTC", mark) == 3
    assert [set(b.candles) for b in run.got[1:]] == [{ETH_1M}] * 3
    assert run.opens() == [ms("2024-01-02 10:30") + k * MIN for k in range(4)]

    # Added again (a bot starting on it), it starts afresh from the feed's current moment.
    feed.add(LTC_1M)
    timer.set_server(ms("2024-01-02 10:35:00.6"))
    await settle(lambda: len(run.got) == 5, WAIT)
    await run.stop()
    assert run.got[-1].candles.keys() == {ETH_1M, LTC_1M}
    assert run.got[-1].candles[LTC_1M][0] // NS == ms("2024-01-02 10:34")


async def test_a_rewind_drops_buffered_candles_and_a_stale_answer(server):
    # A poll is under way when the series is rewound (the fake answers slowly): its answer was asked
    # from the old candle and is dropped; the next poll brings everything from the new one, in order.
    feed, timer = await started(server, "2024-01-02 10:30:30", {ETH_1M: 5})
    run = Collector(feed)
    server.faults.add(KLINES, delay=0.3, times=1)
    timer.set_server(ms("2024-01-02 10:31:00.6"))
    await settle(lambda: feed._series[ETH_1M].polling, WAIT)
    feed.rewind(ETH_1M, ms("2024-01-02 10:24") * NS)
    await settle(lambda: len(run.got) == 6, WAIT)
    await asyncio.sleep(0.1)
    await run.stop()
    assert run.opens() == [ms("2024-01-02 10:25") + k * MIN for k in range(6)]


async def test_a_removed_series_stream_is_unsubscribed(server):
    import ccxt.pro as ccxt_pro

    async with FakeBinanceStream(server) as stream:

        def factory(source: MarketSource):
            return ccxt_pro.binance(stream.ccxt_config())

        feed, timer = await started(server, "2024-01-02 10:30:30", {ETH_1M: 5, LTC_1M: 5}, factory)
        run = Collector(feed)
        await settle(lambda: feed.streaming(ETH_1M) and feed.streaming(LTC_1M), WAIT)
        names = lambda: {name for c in stream.connections for name in c.streams}  # noqa: E731
        assert names() == {"ethbtc@kline_1m", "ltcbtc@kline_1m"}
        feed.remove(LTC_1M)
        await settle(lambda: names() == {"ethbtc@kline_1m"}, WAIT)  # the server got an UNSUBSCRIBE
        assert not feed.streaming(LTC_1M)
        mark = len(server.calls(KLINES))
        for minute in (31, 32):
            timer.set_server(ms(f"2024-01-02 10:{minute}:00.2"))
            await settle(lambda minute=minute: len(run.got) == minute - 30, WAIT)
        assert [set(b.candles) for b in run.got] == [{ETH_1M}] * 2
        assert len(server.calls(KLINES)) == mark  # the ETH stream, and no poll of LTC
        await run.stop()


async def test_replay_feed_remove_and_rewind():
    index = pd.date_range("2024-01-01", periods=6, freq="5min", tz="UTC", name="date")
    values = np.arange(1.0, 7.0)
    frame = pd.DataFrame({c: values for c in ("open", "high", "low", "close", "volume")}, index=index)

    class Source:
        def load(self, pair, timeframe, start=None, end=None):
            return frame

    feed = ReplayFeed(Source())
    a, b = ("A/B", "5m"), ("C/D", "5m")
    feed.add(a)
    assert feed.rewind(b, 123) == 123  # a no-op that adds the series
    batches = feed.batches()
    first = await anext(batches)
    assert set(first.candles) == {a, b}
    feed.remove(b)
    feed.remove(("X/Y", "5m"))  # unknown: ignored
    rest = [batch async for batch in batches]
    assert [set(batch.candles) for batch in rest] == [{a}] * 5
    feed.add(b)  # loaded again, from the replay's current moment: nothing left to play
    assert [batch async for batch in feed.batches()] == []


async def test_a_restarted_engine_processes_the_candles_that_closed_while_it_was_down(tmp_path, server):
    from sqlalchemy import select

    from engine.runtime import run_engine
    from engine.store import create_engine_for, session_factory
    from engine.store.models import EquitySnapshot
    from tests.engine.runtime.helpers import FLIP_BOT, FLIP_STRATEGY, FastTimer, live_run_options

    (tmp_path / "strategies").mkdir()
    (tmp_path / "bots").mkdir()
    (tmp_path / "strategies" / "flip.yaml").write_text(FLIP_STRATEGY)
    (tmp_path / "bots" / "flip.yaml").write_text(FLIP_BOT)
    url = f"sqlite:///{tmp_path / 'engine.db'}"

    async def run(start_ms: int, candles: int) -> None:
        """Run the engine (one exchange minute every 100 ms of wall time) until the bot took ``candles``."""
        options = live_run_options(tmp_path, server, FastTimer(server, start_ms, speed=600))
        runtimes = []
        task = asyncio.create_task(run_engine(options, on_runtime=runtimes.append))
        await settle(
            lambda: (
                runtimes
                and "flip" in runtimes[0].slots
                and runtimes[0].runner("flip").view.candles >= candles
            ),
            60,
        )
        runtimes[0].request_stop()
        await asyncio.wait_for(task, 20)

    async def snapshot_times() -> list[pd.Timestamp]:
        engine = create_engine_for(url)
        try:
            async with session_factory(engine)() as session:
                rows = (
                    await session.execute(select(EquitySnapshot.time).order_by(EquitySnapshot.id))
                ).scalars()
                return [pd.Timestamp(t).tz_localize(None) for t in rows]
        finally:
            await engine.dispose()

    await run(ms("2024-01-02 10:00:30"), 5)
    first = await snapshot_times()
    last = first[-1]  # one snapshot per candle, at its open time: the checkpoint's candle
    # Back 21.5 minutes later: the candles opening last + 1 min to last + 20 min closed meanwhile.
    restart = int(pd.Timestamp(last, tz="UTC").value // NS) + 21 * MIN + 30_000
    await run(restart, 25)
    times = await snapshot_times()
    assert times[: len(first)] == first
    # Every candle once, in order, across the restart: the 20 missed ones were processed too.
    assert times == list(pd.date_range(times[0], periods=len(times), freq="1min"))
    assert times[-1] >= last + pd.Timedelta(minutes=21)


async def test_history_before_the_warm_up_is_fetched_once_and_kept(server, candles):
    # Bots restored from a checkpoint 20 candles back fill their windows up to it: the first asks the
    # exchange, the next ones are served from memory.
    feed, _ = await started(server, "2024-01-02 10:30:30", {ETH_1M: 50})
    until = ms("2024-01-02 10:10") * NS  # the close of the 10:09 candle
    expected = candles.loc["2024-01-02 09:20":"2024-01-02 10:09"]
    mark = len(server.calls(KLINES))
    pd.testing.assert_frame_equal(feed.history(ETH_1M, until, 50), expected, check_freq=False)
    assert len(server.calls(KLINES)) > mark
    mark = len(server.calls(KLINES))
    for _ in range(3):
        pd.testing.assert_frame_equal(feed.history(ETH_1M, until, 50), expected, check_freq=False)
    pd.testing.assert_frame_equal(
        feed.history(ETH_1M, ms("2024-01-02 10:30") * NS, 70),
        candles.loc["2024-01-02 09:20":"2024-01-02 10:29"],
        check_freq=False,
    )
    assert len(server.calls(KLINES)) == mark
    await feed.close()
