"""Short positions (futures): signals, stops, targets, trailing, slippage, reversal; ignored on spot."""

from __future__ import annotations

import pytest

from engine.trading import Trailing
from tests.engine.trading.scenario import HOUR, T0, flat, pair, run


def only_trade(result):
    assert len(result.trades) == 1, result.trades
    return result.trades.iloc[0]


def test_short_profits_when_the_price_falls():
    candles = [*flat(2), (100, 100, 90, 90), *flat(2, 90.0)]
    result = run(pair(candles, entry_short=[0], exit_short=[2]), market="futures", fee_taker=0.001)
    trade = only_trade(result)
    amount = 1000 / 1.001 / 100
    assert trade.side == "short" and trade.exit_reason == "exit_signal"
    assert (trade.open_price, trade.close_price) == (100, 90)
    expected = amount * 10 - amount * 100 * 0.001 - amount * 90 * 0.001
    assert trade.profit_abs == pytest.approx(expected, rel=1e-12)
    assert result.equity.iloc[-1] == pytest.approx(1000 + expected, rel=1e-12)


def test_short_is_marked_to_market_while_open():
    candles = [*flat(2), (100, 110, 100, 110), (110, 110, 110, 110)]
    result = run(pair(candles, entry_short=[0]), market="futures")
    assert result.equity.iloc[2] == pytest.approx(900.0)  # 10 units short, up 10


def test_short_stop_loss_and_gap():
    candles = [*flat(2), (100, 106, 99, 104), *flat(1, 104)]
    trade = only_trade(run(pair(candles, entry_short=[0]), market="futures", stop_loss=0.05))
    assert trade.exit_reason == "stop_loss" and trade.close_price == pytest.approx(105.0)
    assert trade.profit_abs == pytest.approx(-50.0)
    gap = [*flat(2), (110, 112, 109, 111), *flat(1, 111)]
    trade = only_trade(run(pair(gap, entry_short=[0]), market="futures", stop_loss=0.05))
    assert trade.close_price == 110


def test_short_take_profit():
    candles = [*flat(2), (100, 101, 89, 95), *flat(1, 95)]
    trade = only_trade(run(pair(candles, entry_short=[0]), market="futures", take_profit=0.1))
    assert trade.exit_reason == "take_profit" and trade.close_price == pytest.approx(90.0)


def test_short_trailing_stop_follows_the_low():
    candles = [*flat(2), (100, 101, 90, 96), *flat(1, 96)]
    trade = only_trade(
        run(pair(candles, entry_short=[0]), market="futures", trailing=Trailing(distance=0.05))
    )
    assert trade.exit_reason == "trailing_stop" and trade.close_price == pytest.approx(94.5)


def test_short_slippage_sells_lower_and_buys_back_higher():
    candles = [*flat(2), *flat(2, 90.0)]
    trade = only_trade(run(pair(candles, entry_short=[0], exit_short=[2]), market="futures", slippage=0.01))
    assert trade.open_price == pytest.approx(99.0) and trade.close_price == pytest.approx(90.9)


def test_reversal_closes_the_long_and_opens_the_short_at_the_same_open():
    candles = [*flat(3), *flat(3, 110.0)]
    p = pair(candles, entry_long=[0], exit_long=[2], entry_short=[2])
    result = run(p, market="futures")
    long, short = result.trades.iloc[0], result.trades.iloc[1]
    assert (long.side, long.close_time, long.exit_reason) == ("long", T0 + 3 * HOUR, "exit_signal")
    assert (short.side, short.open_time) == ("short", T0 + 3 * HOUR)
    assert short.amount * 110 == pytest.approx(1000 + long.profit_abs)  # reuses the freed cash


def test_spot_ignores_short_signals():
    result = run(pair(flat(5), entry_short=[0], exit_short=[2]))
    assert result.trades.empty and result.blocked.empty
