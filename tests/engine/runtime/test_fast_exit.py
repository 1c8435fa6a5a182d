"""Fast exits between candle closes, from the outside: a paper bot holding a position leaves inside the
dump candle at a trade-stream price, while the backtest of the same candles leaves at the next open
(no better than the dump candle's low); a bot without ``fast_exit`` rules, or without a position,
evaluates nothing between closes; and ``engine run`` on live candles of the fake Binance follows the
trades of the pair (real ccxt client, ``fetch_trades`` polled) and exits before the close."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from engine.config import load_bot
from engine.data import DataDirectory
from engine.data.naming import candle_filename
from engine.feeds.sources.trades import Trade
from engine.runtime import BotRunner, PortfolioLimits, PortfolioRisk, ReplayFeed
from engine.runtime.fast_exit import FastExitGuard
from engine.runtime.trade_stream import TradeStreams
from tests.engine.runtime.helpers import (
    FastTimer,
    closed_backtest_trades,
    database,
    db_events,
    db_trades,
    live_run_options,
    ms,
    settle,
)

PAIR = "ETH/BTC"
T0 = pd.Timestamp("2024-03-01", tz="UTC")
STEP = pd.Timedelta(minutes=5)
ENTRY, DUMP = 250, 260  # the candle whose close enters, the candle that dumps

STRATEGY = """\
strategy: dump_leaver
description: enters on a +2% candle, leaves fast on a 5% fall inside a candle
timeframe: 5m
entry:
  long: close > open * 1.02
{exits}
"""
FAST = "fast_exit:\n  long: close < open * 0.95\n"
PLAIN = "exit:\n  long: close < open * 0.95\n"

BOT = """\
bot: leaver
strategy: ../strategies/leaver.yaml
exchange: {name: binance, mode: paper, market: spot}
pairs: [ETH/BTC]
capital: {initial: 1 BTC, max_per_trade: 50%}
fees: {maker: 0.1%, taker: 0.1%}
slippage: 0.2%
"""


def _candles() -> pd.DataFrame:
    """Flat at 100, a +3% candle (entry), flat at 103, a dump candle to a low of 90, flat at 91."""
    rows = []
    for i in range(300):
        if i < ENTRY:
            rows.append((100.0, 100.0, 100.0, 100.0))
        elif i == ENTRY:
            rows.append((100.0, 103.0, 100.0, 103.0))
        elif i < DUMP:
            rows.append((103.0, 103.0, 103.0, 103.0))
        elif i == DUMP:
            rows.append((103.0, 103.2, 90.0, 91.0))
        else:
            rows.append((91.0, 91.0, 91.0, 91.0))
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    frame["volume"] = 10.0
    frame.index = pd.date_range(T0, periods=len(frame), freq=STEP, name="date").as_unit("ns")
    return frame


def _workspace(root: Path, exits: str) -> Path:
    for name in ("bots", "strategies", "data"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "strategies" / "leaver.yaml").write_text(STRATEGY.format(exits=exits))
    (root / "bots" / "leaver.yaml").write_text(BOT)
    _candles().to_parquet(root / "data" / candle_filename(PAIR, "5m"))
    return root / "bots" / "leaver.yaml"


async def _runner(root: Path, factory) -> BotRunner:
    loaded = load_bot(root / "bots" / "leaver.yaml")
    feed = ReplayFeed(DataDirectory(root / "data"), start=T0 + 200 * STEP)
    runner = BotRunner(loaded, factory, feed, PortfolioRisk(PortfolioLimits()))
    for key in runner.series:
        feed.add(key)
    await runner.start()
    return runner


async def _play_until(runner: BotRunner, batches, last: int) -> None:
    """Hand ``runner`` its candles up to and including the one at index ``last``."""
    until = int((T0 + last * STEP).value)
    async for batch in batches:
        await runner.on_batch(batch)
        if runner.last_time >= until:
            return


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _at(candle: int, seconds: float) -> int:
    return int((T0 + candle * STEP + pd.Timedelta(seconds=seconds)).value // 1_000_000)


def _dump_trades() -> list[Trade]:
    """The dump as the trade stream shows it inside candle DUMP (its close is 5 minutes later)."""
    return [
        Trade(_at(DUMP, 10), "buy", 0.5, 103.0, "1"),
        Trade(_at(DUMP, 40), "sell", 2.0, 101.0, "2"),
        Trade(_at(DUMP, 70), "sell", 6.0, 97.0, "3"),
        Trade(_at(DUMP, 71), "sell", 1.0, 96.5, "4"),
    ]


async def test_a_paper_bot_leaves_inside_the_dump_candle_where_the_backtest_leaves_at_the_next_open(tmp_path):
    bot_file = _workspace(tmp_path, FAST)
    async with database(tmp_path) as factory:
        runner = await _runner(tmp_path, factory)
        batches = runner.feed.batches()
        await _play_until(runner, batches, DUMP - 1)
        assert runner.trader.position(PAIR) is not None  # entered at the open after ENTRY

        guard = FastExitGuard(runner)
        trades = _dump_trades()
        guard.take(PAIR, trades[:2])
        assert not await guard.check(PAIR, _at(DUMP, 40))  # 101 is not 5% under the open of 103
        guard.take(PAIR, trades[2:3])
        assert not await guard.check(PAIR, _at(DUMP, 40.5))  # throttled: half a second later
        assert await guard.check(PAIR, _at(DUMP, 70.2))  # 97 < 103 x 0.95: out at once
        assert runner.trader.position(PAIR) is None
        guard.take(PAIR, trades[3:])
        assert not await guard.check(PAIR, _at(DUMP, 72))  # flat now: nothing evaluated
        assert (guard.evaluations, guard.exits) == (2, 1)

        async for batch in batches:  # the rest of the replay: the dump candle's close and after
            await runner.on_batch(batch)
        live = await db_trades(factory)
        events = await db_events(factory, "trade", "fast_exit")

        # A restart resumes without the position: the checkpoint was saved with the fast exit.
        again = await _runner(tmp_path, factory)
        assert again.trader.position(PAIR) is None

    assert len(live) == 1
    _, pair, side, _, close_time, _, close_price, _, reason = live[0]
    left = _utc(close_time)
    assert (pair, side, reason) == (PAIR, "long", "fast_exit")
    assert left == T0 + DUMP * STEP + pd.Timedelta(seconds=70.2)  # inside the dump candle
    assert float(close_price) == pytest.approx(97.0 * (1 - 0.002))  # the trade price, slippage on top
    assert len(events) == 1 and events[0].data["seconds_before_close"] == pytest.approx(300 - 70.2)
    assert events[0].data["forming"]["low"] == 97.0 and events[0].data["forming"]["trades"] == 3

    backtest = closed_backtest_trades(tmp_path, bot_file.name)
    assert len(backtest) == 1
    row = backtest.iloc[0]
    # The backtest leaves at the next open, no better than the dump candle's low (90), pessimistic.
    assert row.exit_reason == "fast_exit"
    assert _utc(row.close_time) == T0 + (DUMP + 1) * STEP
    assert float(row.close_price) == pytest.approx(90.0 * (1 - 0.002))
    assert left < _utc(row.close_time) and float(close_price) > float(row.close_price)


async def test_a_bot_without_fast_exit_rules_does_nothing_between_closes(tmp_path):
    _workspace(tmp_path, PLAIN)
    async with database(tmp_path) as factory:
        runner = await _runner(tmp_path, factory)
        await _play_until(runner, runner.feed.batches(), DUMP - 1)
        assert runner.trader.position(PAIR) is not None
        guard = FastExitGuard(runner)
        guard.take(PAIR, _dump_trades())
        assert not await guard.check(PAIR, _at(DUMP, 80))
        assert guard.evaluations == 0 and runner.trader.position(PAIR) is not None
        assert await db_trades(factory) == []
        # The runtime does not follow trades for it (nor for any bot on a replay).
        assert TradeStreams(_LiveLike()).follow(runner) is None
        assert TradeStreams(runner.feed).follow(runner) is None


async def test_a_bot_with_no_position_does_nothing(tmp_path):
    _workspace(tmp_path, FAST)
    async with database(tmp_path) as factory:
        runner = await _runner(tmp_path, factory)
        await _play_until(runner, runner.feed.batches(), ENTRY - 1)  # before the entry
        assert runner.trader.position(PAIR) is None
        guard = FastExitGuard(runner)
        crash = [Trade(_at(ENTRY, 10), "buy", 1.0, 100.0, "1"), Trade(_at(ENTRY, 30), "sell", 9.0, 80.0, "2")]
        guard.take(PAIR, crash)
        assert not await guard.check(PAIR, _at(ENTRY, 31))
        assert guard.evaluations == 0
        assert await db_trades(factory) == []
        assert await db_events(factory, "trade", "fast_exit") == []


class _LiveLike:
    """What TradeStreams reads of a live feed (never reached for a bot without fast exits)."""

    def _client(self, source):  # pragma: no cover - must not be called
        raise AssertionError("no trade stream for a bot without fast_exit rules")

    def _source(self, pair):  # pragma: no cover
        raise AssertionError("no trade stream for a bot without fast_exit rules")


# --- engine run on the fake Binance's live candles and public trades ------------------------------

LIVE_STRATEGY = """\
strategy: flip_fast
description: enters on a rising candle, leaves only when a candle falls 2% before its close
timeframe: 1m
entry:
  long: close > open
fast_exit:
  long: close < open * 0.98
"""

LIVE_BOT = """\
bot: flip-fast
strategy: ../strategies/flip_fast.yaml
exchange: {name: binance, mode: paper, market: spot}
pairs: [ETH/BTC]
capital: {initial: 1 BTC, max_per_trade: 10%}
slippage: 0
"""


@pytest.mark.slow
async def test_engine_run_follows_the_trade_stream_and_exits_before_the_close(tmp_path, server, candles):
    from engine.runtime import run_engine

    for name in ("strategies", "bots"):
        (tmp_path / name).mkdir()
    (tmp_path / "strategies" / "flip_fast.yaml").write_text(LIVE_STRATEGY)
    (tmp_path / "bots" / "flip.yaml").write_text(LIVE_BOT)
    dump = pd.Timestamp("2024-01-02 10:12", tz="UTC")
    start = float(candles.loc[dump, "open"])
    # The public trades of the dump minute (the candles themselves stay the walk's).
    server.book.add_trade(PAIR, ms("2024-01-02 10:12:05"), f"{start:.8f}", "1", buyer_maker=False)
    server.book.add_trade(PAIR, ms("2024-01-02 10:12:20"), f"{start * 0.97:.8f}", "5", buyer_maker=True)
    # One exchange minute every 500 ms of wall time; trades polled every exchange second.
    options = live_run_options(tmp_path, server, FastTimer(server, ms("2024-01-02 10:00:30"), speed=120))
    runtimes = []
    task = asyncio.create_task(run_engine(options, on_runtime=runtimes.append))
    await settle(
        lambda: (
            runtimes
            and "flip-fast" in runtimes[0].slots
            and runtimes[0].runner("flip-fast").view.candles >= 15
        ),
        40,
    )
    runtime = runtimes[0]
    guard = runtime.trade_streams.guards["flip-fast"]
    runtime.request_stop()
    await asyncio.wait_for(task, 10)

    from sqlalchemy import select

    from engine.store import create_engine_for, session_factory
    from engine.store.models import Trade as TradeRow

    engine = create_engine_for(f"sqlite:///{tmp_path / 'engine.db'}")
    try:
        async with session_factory(engine)() as session:
            trades = list((await session.execute(select(TradeRow).order_by(TradeRow.id))).scalars())
    finally:
        await engine.dispose()
    fast = [t for t in trades if t.exit_reason == "fast_exit"]
    assert len(fast) == 1, [(t.open_time, t.close_time, t.exit_reason) for t in trades]
    left = _utc(fast[0].close_time)
    # Seen on a poll after the 10:12:20 trade (one a second of the exchange's clock), before the
    # minute closes at 10:13 (how soon exactly depends on this machine's load: the clock runs 120x).
    assert pd.Timestamp("2024-01-02 10:12:20", tz="UTC") <= left < pd.Timestamp("2024-01-02 10:13", tz="UTC")
    assert float(fast[0].close_price) == pytest.approx(start * 0.97, rel=1e-6)
    assert guard.evaluations >= 1 and guard.exits == 1
    assert all(t.exit_reason == "fast_exit" for t in trades)  # the strategy has no other exit


# --- a testnet bot: the fast exit is a market order on the (signed fake) exchange -----------------

TESTNET_STRATEGY = """\
strategy: flip
description: enters after two rising candles, leaves only on a 2% fall inside a candle
timeframe: 1m
entry:
  long: close > open and close[1] > open[1]
fast_exit:
  long: close < open * 0.98
"""


async def test_a_testnet_bot_sends_its_fast_exit_at_once_and_follows_the_exchange_fill(world):
    from decimal import Decimal as D

    from tests.engine.runtime.helpers import INITIAL, db_orders, play, start_testnet_bot

    root, server, trading = world
    (root / "strategies" / "flip.yaml").write_text(TESTNET_STRATEGY)
    pair = "ETH/USDT"
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server)
        try:
            assert await play(runner, stop=lambda: runner.trader.position(pair) is not None)
            n_orders = len(trading.orders)
            forming_ms = (runner.last_time + runner.step_ns) // 1_000_000
            price = runner._closes[pair]
            guard = FastExitGuard(runner)
            guard.take(
                pair,
                [
                    Trade(forming_ms + 5_000, "buy", 0.1, price, "1"),
                    Trade(forming_ms + 15_000, "sell", 3.0, price * 0.97, "2"),
                ],
            )
            assert await guard.check(pair, forming_ms + 15_100)
            assert runner.trader.position(pair) is None
        finally:
            await runner.close()
        orders = await db_orders(factory)
        trades = await db_trades(factory)
        events = await db_events(factory, "trade", "fast_exit")

    sent = list(trading.orders.values())[n_orders:]
    assert len(sent) == 1 and sent[0].side == "SELL" and sent[0].status == "FILLED"
    stored = [o for o in orders if o.client_order_id == sent[0].client_order_id]
    assert len(stored) == 1 and stored[0].reason == "fast_exit" and stored[0].status.value == "filled"
    # The trade is repriced to the exchange's fill (not the stream's price the kernel closed at first).
    fill_value = sum(D(t["quoteQty"]) for t in sent[0].trades)
    fill_qty = sum(D(t["qty"]) for t in sent[0].trades)
    (row,) = [t for t in trades if t[-1] == "fast_exit"]
    assert float(row[6]) == pytest.approx(float(fill_value / fill_qty), rel=1e-9)
    assert _utc(row[4]) == pd.Timestamp((forming_ms + 15_100) * 1_000_000, tz="UTC")
    assert len(events) == 1
    # The kernel's cash follows the account: every fill's quote flow, fees included.
    cash = INITIAL
    for order in trading.orders.values():
        for t in order.trades:
            flow = D(t["quoteQty"]) + (D(t["commission"]) if order.side == "BUY" else -D(t["commission"]))
            cash += -flow if order.side == "BUY" else flow
    assert runner.trader.state.cash == pytest.approx(float(cash), abs=1e-6)


async def test_a_paper_position_already_leaving_at_the_next_open_is_not_taken_again(tmp_path):
    _workspace(tmp_path, FAST)
    async with database(tmp_path) as factory:
        runner = await _runner(tmp_path, factory)
        await _play_until(runner, runner.feed.batches(), DUMP - 1)
        # As an exit signal on the last close leaves it: the paper kernel fills it at the dump candle's
        # open (when that candle closes), so the position is gone from that open on.
        assert runner.trader.request_exit(PAIR)
        guard = FastExitGuard(runner)
        guard.take(PAIR, _dump_trades())
        assert not await guard.check(PAIR, _at(DUMP, 80))
        assert guard.evaluations == 0 and runner.trader.position(PAIR) is not None
        assert await db_events(factory, "trade", "fast_exit") == []
