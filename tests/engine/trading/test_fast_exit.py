"""Fast exits (a strategy's ``fast_exit:``): filled at the next open, never better than the signal
candle's low (long) or high (short); the same in a backtest and through the live Trader."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.backtest import PairInput
from engine.trading import Candle, Signals, Trader, TradingParams
from engine.trading import layout as L
from engine.trading.state import TradingState
from tests.engine.trading.scenario import HOUR, T0, flat, pair, run

# Entry decided on candle 0, filled at candle 1's open (100); candle 2 dips to 90 and closes at 95.
DIP = [*flat(2), (100, 101, 90, 95)]


def _with_fast(data: PairInput, side: str, at: int) -> PairInput:
    flags = np.zeros(len(data.open_time), dtype=bool)
    flags[at] = True
    return dataclasses.replace(data, **{f"fast_exit_{side}": flags})


def only_trade(result):
    assert len(result.trades) == 1, result.trades
    return result.trades.iloc[0]


@pytest.mark.parametrize(("next_open", "expected"), [(97, 90), (85, 85)])
def test_a_fast_long_exit_fills_at_the_worse_of_the_next_open_and_the_signal_candles_low(next_open, expected):
    candles = [*DIP, (next_open, next_open, next_open, next_open), *flat(1, next_open)]
    plain = only_trade(run(pair(candles, entry_long=[0], exit_long=[2]), slippage=0.01))
    fast = only_trade(run(_with_fast(pair(candles, entry_long=[0]), "long", 2), slippage=0.01))
    assert plain.close_price == pytest.approx(next_open * 0.99)  # an ordinary exit: the next open
    assert fast.close_price == pytest.approx(expected * 0.99)
    assert fast.close_time == plain.close_time == T0 + 3 * HOUR
    assert fast.exit_reason == "fast_exit" and plain.exit_reason == "exit_signal"


def test_a_fast_short_exit_fills_no_better_than_the_signal_candles_high():
    candles = [*flat(2), (100, 108, 99, 104), (103, 103, 103, 103), *flat(1, 103)]
    trade = only_trade(run(_with_fast(pair(candles, entry_short=[0]), "short", 2), market="futures"))
    assert trade.side == "short" and trade.close_price == pytest.approx(108)


def test_a_fast_exit_flag_while_flat_or_on_the_other_side_does_nothing():
    candles = [*DIP, *flat(2, 97)]
    result = run(_with_fast(pair(candles, entry_long=[0]), "short", 2))
    trade = only_trade(result)  # closed at the end of the data, not by the short side's flag
    assert trade.exit_reason == "end_of_data"


def test_the_live_trader_fills_a_fast_exit_like_the_backtest():
    params = TradingParams(initial_capital=1000.0, fee_maker=0.0, fee_taker=0.0, slippage=0.01)
    trader = Trader(["A/USDT"], params, timeframe="1h")
    rows = [*DIP, (97, 97, 97, 97)]
    signals = [Signals(entry_long=True), Signals(), Signals(fast_exit_long=True), Signals()]
    fills = []
    for k, ((o, h, lo, c), s) in enumerate(zip(rows, signals, strict=True)):
        fills += [
            e
            for e in trader.on_candle("A/USDT", Candle(T0 + k * HOUR, o, h, lo, c), s)
            if hasattr(e, "price")
        ]
    backtest = only_trade(run(_with_fast(pair(rows, entry_long=[0]), "long", 2), slippage=0.01))
    assert fills[-1].action == "close" and fills[-1].price == pytest.approx(backtest.close_price)
    assert fills[-1].price == pytest.approx(90 * 0.99)


def test_a_state_saved_before_the_fast_exit_column_loads_with_it_empty():
    state = TradingState.new(["A/USDT"], TradingParams(initial_capital=1000.0))
    old = dataclasses.replace(state, pos_f=state.pos_f[:, : L.P_FAST].copy())
    assert old.pos_f.shape == (1, L.N_POS_F) and np.isnan(old.pos_f[0, L.P_FAST])
