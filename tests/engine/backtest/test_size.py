"""A strategy's `size:` on real candles (../shared/data/binance ETH/BTC, 20 days of 5m): each entry
stakes that fraction of what the bot's risk section gives, taken on the entry signal's candle; above 1
counts as 1, and 0, below 0 or NaN take no entry. A strategy without `size:` trades as before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT

# A fixed stake (10% of a capital that only losses change; no risk-based sizing) on one pair, so the
# expected amount of each trade can be worked out from the trades before it.
BOT = """\
bot: sized
strategy: ../strategies/ema_rsi.yaml
exchange: {name: binance, mode: backtest, market: spot}
pairs: [ETH/BTC]
capital: {initial: 1 BTC, max_per_trade: 10%, reinvest: 0%}
risk: {max_exposure: 100%, max_open_trades: 1}
fees: {maker: 0.1%, taker: 0.1%}
slippage: 0.05%
"""


def _backtest(tmp_path, shared_data, size: str | None):
    from engine.backtest.session import run_bot_backtest

    root = tmp_path / (size or "none").replace("/", "_").replace(" ", "").replace("*", "x")
    (root / "bots").mkdir(parents=True)
    (root / "strategies").mkdir()
    strategy = (ROOT / "strategies" / "ema_rsi.yaml").read_text()
    if size is not None:
        strategy += f"\nsize: {size}\n"
    (root / "strategies" / "ema_rsi.yaml").write_text(strategy)
    (root / "bots" / "sized.yaml").write_text(BOT)
    return run_bot_backtest(root / "bots" / "sized.yaml", data_dir=shared_data)


def test_each_entry_stakes_the_size_of_its_signal_candle(tmp_path, shared_data):
    run = _backtest(tmp_path, shared_data, "(momentum - 54) / 6")
    trades = run.result.trades
    signals = run.signals["ETH/BTC"]
    # The size worked out here from the feature, not read from the signals' own size column.
    size = (signals["feature:momentum"].to_numpy() - 54) / 6
    index = signals.index
    fractions, expected = [], []
    for k, trade in enumerate(trades.itertuples()):
        signal_row = index.get_loc(pd.Timestamp(trade.open_time)) - 1  # decided at the previous close
        fraction = min(size[signal_row], 1.0)
        losses = min(float(trades["profit_abs"].iloc[:k].sum()), 0.0)  # reinvest 0%: only losses count
        fractions.append(fraction)
        expected.append(0.1 * (1.0 + losses) * fraction / trade.open_price)
    assert len(trades) >= 20
    assert all(f > 0 for f in fractions)  # no entry on a size of 0 or below
    assert any(f < 0.5 for f in fractions) and any(f == 1.0 for f in fractions)  # scaled and clipped
    np.testing.assert_allclose(trades["amount"].to_numpy(), expected, rtol=1e-12)
    # Entry signals with a size of 0 or below happened, and none of them opened a trade.
    entries = np.flatnonzero(signals["entry_long"].to_numpy())
    refused = [index[r + 1] for r in entries if size[r] <= 0 and r + 1 < len(index)]
    assert refused and not set(refused) & set(pd.to_datetime(trades["open_time"]))


def test_above_one_is_the_full_stake_and_no_size_is_unchanged(tmp_path, shared_data):
    plain = _backtest(tmp_path, shared_data, None).result.trades
    assert len(plain) >= 20
    for big in ("2", "1", "1 / (close - close)"):  # +infinity counts as 1 too
        pd.testing.assert_frame_equal(_backtest(tmp_path, shared_data, big).result.trades, plain)


@pytest.mark.parametrize("size", ["0", "-0.5", "(close - close) / (close - close)", "momentum - 1000"])
def test_zero_negative_or_nan_takes_no_entry(tmp_path, shared_data, size):
    run = _backtest(tmp_path, shared_data, size)
    assert run.signals["ETH/BTC"]["entry_long"].any()
    assert run.result.trades.empty
    assert run.result.blocked.empty  # not a refused entry: no entry at all


def test_a_strategy_without_size_has_no_size_column(tmp_path, shared_data):
    run = _backtest(tmp_path, shared_data, None)
    assert "size" not in run.signals["ETH/BTC"].columns
