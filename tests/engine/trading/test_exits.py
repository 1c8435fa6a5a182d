"""Every exit reason, fees and slippage, on hand-made candles with hand-computed results."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.trading import ProfitLock, Trailing
from tests.engine.trading.scenario import HOUR, T0, detail_candles, flat, pair, run

MIN = pd.Timedelta(minutes=1)


def only_trade(result):
    assert len(result.trades) == 1, result.trades
    return result.trades.iloc[0]


def test_signal_entry_and_exit_fill_at_next_open_with_taker_fees_on_both_sides():
    candles = [
        (100, 101, 99, 100),
        (100, 102, 99, 101),
        (104, 106, 103, 105),
        (110, 111, 109, 110),
        (110, 110, 110, 110),
    ]
    result = run(pair(candles, entry_long=[0], exit_long=[2]), fee_taker=0.001, fee_maker=0.0005)
    trade = only_trade(result)
    amount = 1000 / 1.001 / 100  # all the capital, less the entry fee
    fee_in = amount * 100 * 0.001
    fee_out = amount * 110 * 0.001
    assert trade.open_time == T0 + HOUR and trade.close_time == T0 + 3 * HOUR
    assert trade.open_price == 100 and trade.close_price == 110
    assert trade.amount == pytest.approx(amount, rel=1e-12)
    assert trade.profit_abs == pytest.approx(amount * 10 - fee_in - fee_out, rel=1e-12)
    assert trade.profit_ratio == pytest.approx((amount * 10 - fee_in - fee_out) / (amount * 100), rel=1e-12)
    assert trade.fees == pytest.approx(fee_in + fee_out, rel=1e-12)
    assert trade.exit_reason == "exit_signal"
    assert result.equity.iloc[-1] == pytest.approx(1000 + trade.profit_abs, rel=1e-12)
    assert result.metrics["fees_paid"] == pytest.approx(fee_in + fee_out, rel=1e-12)


def test_slippage_worsens_both_fills():
    candles = [*flat(2), (110, 110, 110, 110), (110, 110, 110, 110)]
    trade = only_trade(run(pair(candles, entry_long=[0], exit_long=[1]), slippage=0.01))
    assert trade.open_price == pytest.approx(101.0)
    assert trade.close_price == pytest.approx(110 * 0.99)


def test_stop_loss_inside_the_candle_fills_at_the_stop():
    candles = [*flat(2), (100, 101, 94, 96), *flat(2, 96)]
    trade = only_trade(run(pair(candles, entry_long=[0]), stop_loss=0.05, fee_taker=0.001))
    assert trade.exit_reason == "stop_loss"
    assert trade.close_price == pytest.approx(95.0)
    assert trade.close_time == T0 + 2 * HOUR
    amount = 1000 / 1.001 / 100
    assert trade.profit_abs == pytest.approx(
        -5 * amount - amount * 100 * 0.001 - amount * 95 * 0.001, rel=1e-12
    )


def test_gap_through_the_stop_fills_at_the_open():
    candles = [*flat(2), (90, 92, 88, 91), *flat(2, 91)]
    trade = only_trade(run(pair(candles, entry_long=[0]), stop_loss=0.05, slippage=0.001))
    assert trade.exit_reason == "stop_loss"
    assert trade.close_price == pytest.approx(90 * 0.999)


def test_take_profit_fills_at_the_target_as_a_maker_order():
    candles = [*flat(2), (100, 112, 99, 108), *flat(2, 108)]
    trade = only_trade(
        run(pair(candles, entry_long=[0]), take_profit=0.1, fee_maker=0.0002, fee_taker=0.001, slippage=0.01)
    )
    assert trade.exit_reason == "take_profit"
    entry = 100 * 1.01
    assert trade.close_price == pytest.approx(entry * 1.1)  # a limit order: no slippage
    amount = trade.amount
    assert trade.fees == pytest.approx(amount * entry * 0.001 + amount * entry * 1.1 * 0.0002, rel=1e-12)


def test_gap_over_the_target_fills_at_the_better_open():
    candles = [*flat(2), (115, 116, 114, 115), *flat(1, 115)]
    trade = only_trade(run(pair(candles, entry_long=[0]), take_profit=0.1))
    assert trade.exit_reason == "take_profit" and trade.close_price == 115


def test_stop_is_assumed_first_when_one_candle_touches_stop_and_target():
    candles = [*flat(2), (100, 112, 94, 100), *flat(1)]
    trade = only_trade(run(pair(candles, entry_long=[0]), stop_loss=0.05, take_profit=0.1))
    assert trade.exit_reason == "stop_loss" and trade.close_price == pytest.approx(95.0)


def test_bar_magnifier_resolves_stop_and_target_in_time_order():
    # The hourly candle touches both; its minutes show the high came first.
    minutes = [(100, 111, 99, 110), (110, 110, 94, 95)] + [(95, 95, 95, 95)] * 58
    detail = detail_candles(minutes, T0 + 2 * HOUR, MIN)
    candles = [*flat(2), (100, 111, 94, 95), *flat(1, 95)]
    trade = only_trade(run(pair(candles, entry_long=[0], detail=detail), stop_loss=0.05, take_profit=0.1))
    assert trade.exit_reason == "take_profit" and trade.close_price == pytest.approx(110.0)
    assert trade.close_time == T0 + 2 * HOUR  # the first minute of the candle


def test_bar_magnifier_stamps_the_exit_with_the_detail_candle_time():
    minutes = [(100, 101, 99, 100)] * 7 + [(100, 100, 94, 95)] + [(95, 95, 95, 95)] * 52
    detail = detail_candles(minutes, T0 + 2 * HOUR, MIN)
    candles = [*flat(2), (100, 101, 94, 95), *flat(1, 95)]
    trade = only_trade(run(pair(candles, entry_long=[0], detail=detail), stop_loss=0.05, take_profit=0.1))
    assert trade.exit_reason == "stop_loss" and trade.close_time == T0 + 2 * HOUR + 7 * MIN


def test_candles_without_detail_fall_back_to_the_pessimistic_rule():
    detail = detail_candles([(100, 100, 100, 100)] * 60, T0, MIN)  # covers only the first candle
    candles = [*flat(2), (100, 112, 94, 100), *flat(1)]
    trade = only_trade(run(pair(candles, entry_long=[0], detail=detail), stop_loss=0.05, take_profit=0.1))
    assert trade.exit_reason == "stop_loss"


def test_trailing_stop_activates_then_exits_on_a_later_candle():
    candles = [*flat(2), (100, 110, 99, 108), (107, 108, 103, 104), *flat(1, 104)]
    result = run(pair(candles, entry_long=[0]), trailing=Trailing(distance=0.05, activate_at=0.02))
    trade = only_trade(result)
    assert trade.exit_reason == "trailing_stop"
    assert trade.close_price == pytest.approx(110 * 0.95)
    assert trade.close_time == T0 + 3 * HOUR


def test_trailing_stop_raised_by_the_high_is_hit_on_the_way_to_the_close():
    candles = [*flat(2), (100, 110, 99, 104), *flat(1, 104)]
    trade = only_trade(run(pair(candles, entry_long=[0]), trailing=Trailing(distance=0.05, activate_at=0.02)))
    assert trade.exit_reason == "trailing_stop" and trade.close_time == T0 + 2 * HOUR
    assert trade.close_price == pytest.approx(104.5)


def test_trailing_stop_is_not_active_before_the_activation_move():
    candles = [*flat(2), (100, 101, 99, 100), (100, 101, 96, 100), *flat(1)]
    trade = only_trade(run(pair(candles, entry_long=[0]), trailing=Trailing(distance=0.03, activate_at=0.02)))
    assert trade.exit_reason == "end_of_data"


def test_trailing_stop_below_the_initial_stop_does_not_loosen_it():
    candles = [*flat(2), (100, 101, 96, 100), *flat(1)]
    trade = only_trade(run(pair(candles, entry_long=[0]), stop_loss=0.03, trailing=Trailing(distance=0.1)))
    assert trade.exit_reason == "stop_loss" and trade.close_price == pytest.approx(97.0)


def test_profit_lock_moves_the_stop_once_the_move_is_reached():
    candles = [*flat(2), (100, 106, 100, 105), (105, 105, 100, 100), *flat(1)]
    trade = only_trade(
        run(
            pair(candles, entry_long=[0]), stop_loss=0.05, profit_lock=ProfitLock(activate_at=0.05, keep=0.01)
        )
    )
    assert trade.exit_reason == "stop_loss" and trade.close_price == pytest.approx(101.0)
    assert trade.close_time == T0 + 3 * HOUR


def test_open_trade_closes_at_the_last_close_at_end_of_data():
    candles = [*flat(2), (100, 103, 99, 102), (102, 104, 101, 103)]
    result = run(pair(candles, entry_long=[0]), fee_taker=0.001, slippage=0.001)
    trade = only_trade(result)
    assert trade.exit_reason == "end_of_data"
    assert trade.close_price == pytest.approx(103 * 0.999)
    assert trade.close_time == T0 + 4 * HOUR  # the close of the last candle
    assert result.equity.iloc[-1] == pytest.approx(1000 + trade.profit_abs, rel=1e-12)


def test_strategy_stop_and_target_distances_override_the_percentages():
    candles = [*flat(2), (100, 101, 96.5, 100), *flat(1)]
    n = len(candles)
    p = pair(candles, entry_long=[0], stop_distance=[3.0] * n, take_profit_distance=[50.0] * n)
    trade = only_trade(run(p, stop_loss=0.1, take_profit=0.01))
    assert trade.exit_reason == "stop_loss" and trade.close_price == pytest.approx(97.0)


def test_atr_stop_applies_when_the_strategy_gives_no_distance():
    candles = [*flat(2), (100, 101, 95.5, 100), *flat(1)]
    n = len(candles)
    trade = only_trade(run(pair(candles, entry_long=[0], atr=[2.0] * n), stop_loss_atr=2.0))
    assert trade.exit_reason == "stop_loss" and trade.close_price == pytest.approx(96.0)


def test_entry_and_exit_on_the_same_candle_do_nothing():
    result = run(pair(flat(4), entry_long=[0], exit_long=[0]))
    assert result.trades.empty
