"""The DSL strategy gives the same trades through the live path (one closed candle at a time,
LiveSignals + Trader) as through the backtester over whole arrays, on real Binance candles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engine.backtest.from_config import trading_params
from engine.backtest.inputs import PairInput
from engine.backtest.runner import run_backtest
from engine.config import load_bot
from engine.data.files import read_candle_file
from engine.strategy import compute_signals
from engine.strategy.live import LiveSignals
from engine.trading.trader import Trader

ROOT = Path(__file__).resolve().parents[3]
PAIRS = {"ETH/BTC": "ETH_BTC-5m.csv", "LTC/BTC": "LTC_BTC-5m.csv"}


def _bot_yaml(tmp_path: Path) -> Path:
    strategy = tmp_path / "s.yaml"
    strategy.write_text(
        "strategy: cross\ntimeframe: 5m\n"
        "inputs:\n  fast: {default: 12, range: [5, 30]}\n"
        "features:\n  fast_ma: ema(close, fast)\n  slow_ma: ema(close, 26)\n"
        "entry:\n  long: crosses_above(fast_ma, slow_ma) and rsi(close, 14) < 70\n"
        "exit:\n  long: crosses_below(fast_ma, slow_ma)\n"
        "stops:\n  stop_loss: 2 * atr(14)\n  take_profit: 3%\n  trailing: {activate_at: 1%, distance: 0.5%}\n"
    )
    bot = tmp_path / "b.yaml"
    bot.write_text(
        "bot: cross-bot\nstrategy: s.yaml\nexchange: {name: binance, mode: paper}\n"
        "pairs: [ETH/BTC, LTC/BTC]\ncapital: {initial: 1 BTC, max_per_trade: 40%}\n"
        "risk: {max_exposure: 80%, daily_loss_limit: 5%}\n"
    )
    return bot


@pytest.mark.slow
def test_live_path_reproduces_the_backtest(tmp_path, shared_data):
    bot = load_bot(_bot_yaml(tmp_path))
    params = trading_params(bot)
    candles = {pair: read_candle_file(shared_data / name)[0].iloc[:2000] for pair, name in PAIRS.items()}

    expected = run_backtest(
        {
            pair: PairInput.from_frames(c, compute_signals(bot.strategy, c), timeframe="5m")
            for pair, c in candles.items()
        },
        params,
    ).trades
    assert len(expected) > 20

    live = LiveSignals(bot.strategy, max_history=1000)
    trader = Trader(list(PAIRS), params, timeframe="5m")
    times = sorted(set().union(*(c.index for c in candles.values())))
    for time in times:
        batch = {}
        for pair, frame in candles.items():
            if time in frame.index:
                row = frame.loc[time]
                batch[pair] = live.on_candle(pair, time, row.open, row.high, row.low, row.close, row.volume)
        trader.on_candles(batch)
    trader.close_all()
    actual = trader.trades()

    columns = ["pair", "side", "open_time", "close_time", "exit_reason"]
    pd.testing.assert_frame_equal(
        actual[columns].reset_index(drop=True), expected[columns].reset_index(drop=True)
    )
    for column in ("open_price", "close_price", "amount", "profit_abs"):
        assert (actual[column].to_numpy() - expected[column].to_numpy()).__abs__().max() <= 1e-9 * expected[
            column
        ].abs().max()
