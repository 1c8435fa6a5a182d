"""Small pure pieces: client order ids, the state checkpoint, portfolio exposure, the replay feed's order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.runtime import PortfolioLimits, PortfolioRisk, ReplayFeed, client_order_id
from engine.runtime.checkpoint import dump_state, load_state
from engine.trading.params import TradingParams
from engine.trading.trader import Candle, Signals, Trader


def test_client_order_ids_are_deterministic_and_distinct():
    t = pd.Timestamp("2024-01-01 10:00", tz="UTC")
    a = client_order_id("bot", "ETH/BTC", t, "open_long")
    assert a == client_order_id("bot", "ETH/BTC", t, "open_long")
    assert a.startswith("ye") and len(a) == 34
    others = {
        client_order_id("bot2", "ETH/BTC", t, "open_long"),
        client_order_id("bot", "LTC/BTC", t, "open_long"),
        client_order_id("bot", "ETH/BTC", t + pd.Timedelta(minutes=5), "open_long"),
        client_order_id("bot", "ETH/BTC", t, "close"),
    }
    assert a not in others and len(others) == 4


def test_checkpoint_round_trip_continues_identically():
    params = TradingParams(initial_capital=1000.0, max_per_trade=0.5, stop_loss=0.02)
    rng = np.random.default_rng(1)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    times = pd.date_range("2024-01-01", periods=200, freq="5min", tz="UTC")

    def step(trader, k):
        o, c = prices[k - 1] if k else prices[0], prices[k]
        candle = Candle(times[k], o, max(o, c) * 1.002, min(o, c) * 0.998, c)
        return trader.on_candle("X/USDT", candle, Signals(entry_long=k % 7 == 0, exit_long=k % 11 == 0))

    straight = Trader(["X/USDT"], params, "5m")
    resumed = Trader(["X/USDT"], params, "5m")
    for k in range(100):
        step(straight, k)
        step(resumed, k)
    resumed.state = load_state(dump_state(resumed.state))
    for k in range(100, 200):
        assert step(straight, k) == step(resumed, k)
    pd.testing.assert_frame_equal(straight.trades(), resumed.trades())
    assert len(straight.trades()) > 5


def test_portfolio_exposure_limit():
    risk = PortfolioRisk(PortfolioLimits(max_exposure=0.5))
    risk.register("a", 1000.0)
    risk.register("b", 1000.0)
    risk.update("a", equity=1000.0, open_trades=1, notional=600.0, pending=0)
    assert risk.entry_refusal() is None
    risk.update("b", equity=1000.0, open_trades=1, notional=400.0, pending=0)
    assert risk.entry_refusal() == "portfolio_max_exposure"
    risk.remove("b")  # its capital leaves the pool too: 600 of 1000
    assert risk.entry_refusal() == "portfolio_max_exposure"
    risk.update("a", equity=1000.0, open_trades=1, notional=400.0, pending=0)
    assert risk.entry_refusal() is None
    with pytest.raises(ValueError, match="positive ratio"):
        PortfolioLimits(max_exposure=0)


class _Source:
    def __init__(self, frames):
        self.frames = frames

    def load(self, pair, timeframe, start=None, end=None):
        return self.frames[(pair, timeframe)]


def _frame(start, periods, freq):
    index = pd.date_range(start, periods=periods, freq=freq, tz="UTC", name="date")
    values = np.arange(1.0, periods + 1.0)
    return pd.DataFrame({c: values for c in ("open", "high", "low", "close", "volume")}, index=index)


async def test_replay_feed_groups_candles_by_close_time():
    source = _Source(
        {("A/B", "5m"): _frame("2024-01-01", 6, "5min"), ("A/B", "15m"): _frame("2024-01-01", 2, "15min")}
    )
    feed = ReplayFeed(source)
    feed.add(("A/B", "5m"))
    feed.add(("A/B", "15m"))
    batches = [b async for b in feed.batches()]
    closes = [pd.Timestamp(b.close_time, tz="UTC").strftime("%H:%M") for b in batches]
    assert closes == ["00:05", "00:10", "00:15", "00:20", "00:25", "00:30"]
    assert set(batches[2].candles) == {("A/B", "5m"), ("A/B", "15m")}
    assert batches[2].candles[("A/B", "15m")][0] == pd.Timestamp("2024-01-01", tz="UTC").value
    history = feed.history(("A/B", "5m"), pd.Timestamp("2024-01-01 00:15", tz="UTC").value, 2)
    assert list(history.index.strftime("%H:%M")) == ["00:05", "00:10"]
