"""Shared setup for the runtime tests: a database, a feed and a Runtime over a workspace; the clocks,
clients and bot files of the live feed tests on the fake Binance; the testnet bot of the exchange tests.

Plain functions and constants only: the fixtures built on them are in ``conftest.py`` (test modules do
not import each other, nor share fixtures by assignment).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from decimal import Decimal as D
from pathlib import Path

import pandas as pd

from engine.data import DataDirectory
from engine.runtime import PortfolioLimits, ReplayFeed, Runtime, RuntimeConfig
from engine.runtime.live_feed import MarketSource
from engine.store import create_engine_for, session_factory, upgrade_async
from tests.engine.exchanges.fake import API_KEY, SECRET
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_trading import FakeTrading


def db_url(root: Path) -> str:
    return f"sqlite:///{root / 'engine.db'}"


@asynccontextmanager
async def database(root: Path):
    engine = create_engine_for(db_url(root))
    await upgrade_async(engine)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def make_runtime(
    root: Path, factory, *, limits: PortfolioLimits | None = None, end: str | None = None, **config
) -> Runtime:
    import pandas as pd

    feed = ReplayFeed(DataDirectory(root / "data"), end=None if end is None else pd.Timestamp(end, tz="UTC"))
    cfg = RuntimeConfig(
        bots_dir=root / "bots",
        strategies_dir=root / "strategies",
        limits=limits or PortfolioLimits(),
        backoff=0.01,
        **config,
    )
    return Runtime(cfg, factory, feed)


async def db_trades(factory) -> list[tuple]:
    from sqlalchemy import select

    from engine.store.models import Bot, Trade

    async with factory() as session:
        rows = await session.execute(
            select(
                Bot.name,
                Trade.pair,
                Trade.side,
                Trade.open_time,
                Trade.close_time,
                Trade.open_price,
                Trade.close_price,
                Trade.amount,
                Trade.exit_reason,
            )
            .join(Bot, Bot.id == Trade.bot_id)
            .order_by(Bot.name, Trade.close_time, Trade.id)
        )
        return [tuple(r) for r in rows]


async def db_orders(factory):  # type: ignore[no-untyped-def]
    """Every stored order, in the order they were stored."""
    from sqlalchemy import select

    from engine.store.models import Order

    async with factory() as session:
        return list((await session.execute(select(Order).order_by(Order.id))).scalars())


async def db_events(factory, category: str | None = None, kind: str | None = None):
    from sqlalchemy import select

    from engine.store.models import Event

    async with factory() as session:
        query = select(Event).order_by(Event.id)
        if category:
            query = query.where(Event.category == category)
        if kind:
            query = query.where(Event.kind == kind)
        return list((await session.execute(query)).scalars())


# --- live market data on the fake Binance ---------------------------------------------------------


def ms(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1_000_000)


class ManualTimer:
    """A local clock the test moves by hand; the fake server's clock is ``skew`` ms ahead of it."""

    def __init__(self, server: FakeBinance, server_ms: int, skew: int = 0) -> None:
        self.t = float(server_ms - skew)
        server.clock = lambda: int(self.t) + skew  # type: ignore[method-assign]

    def set_server(self, server_ms: int, skew: int = 0) -> None:
        self.t = float(server_ms - skew)

    def now_ms(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        target = self.t + seconds * 1000
        while self.t < target:
            await asyncio.sleep(0.002)


class FastTimer:
    """Time running ``speed`` times faster than the wall clock, from ``start_ms``; drives the server too."""

    def __init__(self, server: FakeBinance, start_ms: int, speed: float) -> None:
        self.start, self.speed, self.wall = start_ms, speed, time.perf_counter()
        server.clock = lambda: int(self.now_ms())  # type: ignore[method-assign]

    def now_ms(self) -> float:
        return self.start + (time.perf_counter() - self.wall) * 1000 * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


def client_factory(server: FakeBinance):
    import ccxt.async_support as ccxt_async

    def make(source: MarketSource):
        client = ccxt_async.binance(server.ccxt_config())
        client.enableLastResponseHeaders = True
        return client

    return make


def expected_row(frame: pd.DataFrame, open_ms: int) -> tuple:
    row = frame.loc[pd.Timestamp(open_ms * 1_000_000, tz="UTC")]
    return (open_ms * 1_000_000, *(float(row[c]) for c in ("open", "high", "low", "close", "volume")))


def five_minute(candles: pd.DataFrame) -> pd.DataFrame:
    return candles.resample("5min", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )


def live_run_options(root, server: FakeBinance, timer):  # type: ignore[no-untyped-def]
    """``engine run`` options for the bots under ``root`` on live candles from the fake ``server``."""
    from engine.runtime import RunOptions, RuntimeConfig

    return RunOptions(
        config=RuntimeConfig(bots_dir=root / "bots", strategies_dir=root / "strategies", backoff=0.01),
        replay=None,
        database_url=f"sqlite:///{root / 'engine.db'}",
        signals=False,
        live={"client_factory": client_factory(server), "timer": timer, "grace": 30.0},
    )


async def settle(condition, timeout: float = 3.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


FLIP_STRATEGY = """\
strategy: flip
description: enters on a rising candle, leaves on a falling one (trades often)
timeframe: 1m
entry:
  long: close > open
exit:
  long: close < open
"""

FLIP_BOT = """\
bot: flip
strategy: ../strategies/flip.yaml
exchange: {name: binance, mode: paper, market: spot}
pairs: [ETH/BTC]
capital: {initial: 1 BTC, max_per_trade: 10%}
"""


# --- a testnet bot on the signed fake Binance (the ``world`` fixture) ------------------------------

ENV = {"FAKE_BINANCE_KEY": API_KEY, "FAKE_BINANCE_SECRET": SECRET}
INITIAL = D(1000)

STRATEGY = """\
strategy: flip
description: enters after two rising candles, leaves on a falling one (trades often)
timeframe: 1m
entry:
  long: close > open and close[1] > open[1]
exit:
  long: close < open
"""

BOT = """\
bot: eth-testnet
strategy: ../strategies/flip.yaml
exchange:
  name: binance
  mode: testnet
  market: spot
  credentials: {key: env:FAKE_BINANCE_KEY, secret: env:FAKE_BINANCE_SECRET}
pairs: [ETH/USDT]
capital:
  initial: 1000 USDT
  max_per_trade: 20%
fees: {maker: 0.1%, taker: 0.1%}
slippage: 0
"""


def build_testnet_world(
    root: Path,
    *,
    more_markets: Callable[[pd.DataFrame], list[FakeMarket]] | None = None,
    balances: dict[str, str] | None = None,
) -> tuple[FakeBinance, FakeTrading]:
    """The ``world`` fixture's setting under ``root``: the testnet bot ``bots/eth.yaml`` (:data:`BOT`) and
    its strategy, replay candles in ``root/data`` closed by a minute ago, and a started signed fake Binance
    serving the same walk (up to an hour past now) with fee 0.1% on ``balances`` (10000 USDT). Markets
    built by ``more_markets`` from the ETH/USDT candles are served beside it. The caller stops the server."""
    from engine.data.naming import candle_filename

    for name in ("strategies", "bots", "data"):
        (root / name).mkdir()
    (root / "strategies" / "flip.yaml").write_text(STRATEGY)
    (root / "bots" / "eth.yaml").write_text(BOT)
    now = pd.Timestamp.now(tz="UTC").floor("min")
    candles = walk_candles(
        (now - pd.Timedelta(minutes=300)).isoformat(), (now + pd.Timedelta(minutes=60)).isoformat(),
        start_price=2000.0, seed=7,
    )  # fmt: skip
    candles[candles.index < now - pd.Timedelta(minutes=1)].to_parquet(
        root / "data" / candle_filename("ETH/USDT", "1m")
    )
    market = FakeMarket.spot("ETH/USDT", candles, tick_size="0.01", step_size="0.0001", min_notional="5")
    server = FakeBinance([market, *(more_markets(candles) if more_markets else [])]).start()
    trading = FakeTrading.install(server, API_KEY, SECRET, balances or {"USDT": "10000"})
    trading.fee_rate = D("0.001")
    return server, trading


async def start_testnet_bot(root: Path, factory, server: FakeBinance, *, replay_minutes: int = 60):  # type: ignore[no-untyped-def]
    """A started BotRunner of ``root/bots/eth.yaml`` on ``server`` through the real ccxt client, replaying
    the last ``replay_minutes`` of ``root/data`` (short retry delays)."""
    from engine.config import load_bot
    from engine.exchanges import make_exchange
    from engine.runtime import BotRunner, PortfolioRisk

    loaded = load_bot(root / "bots" / "eth.yaml")
    config = server.ccxt_config()
    exchange = make_exchange(
        loaded.model,
        session_factory=factory,
        api_urls=server.ccxt_urls(),
        environ=ENV,
        options={"options": config["options"], "rateLimit": 1, "timeout": 1500},
    )
    exchange.lookup_delay = 0.05  # type: ignore[attr-defined]
    start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=replay_minutes)
    feed = ReplayFeed(DataDirectory(root / "data"), start=start)
    runner = BotRunner(loaded, factory, feed, PortfolioRisk(PortfolioLimits()), exchange=exchange)
    for key in runner.series:
        feed.add(key)
    await runner.start()
    assert runner.execution is not None
    runner.execution.base_delay = 0.01
    return runner


async def play(runner, stop=None) -> bool:  # type: ignore[no-untyped-def]
    """Feed ``runner`` its candles until ``stop()`` holds after one (True) or the feed ends (False)."""
    async for batch in runner.feed.batches():
        await runner.on_batch(batch)
        if stop is not None and stop():
            return True
    return False


def closed_backtest_trades(root: Path, bot_file: str):
    """The trades a backtest of ``root/bots/bot_file`` on ``root/data`` closed (not at the data's end):
    what a replay of the same candles must also close."""
    from engine.backtest.session import run_bot_backtest

    trades = run_bot_backtest(root / "bots" / bot_file, data_dir=root / "data").result.trades
    return trades[trades["exit_reason"] != "end_of_data"]


def trade_keys(trades) -> list[tuple]:
    """(pair, open time, close time, exit reason) per row of a backtest's trades frame."""
    return [
        (r.pair, pd.Timestamp(r.open_time), pd.Timestamp(r.close_time), r.exit_reason)
        for r in trades.itertuples()
    ]
