"""Position sizing, the shared capital pool, caps, exchange limits and the daily loss limit."""

from __future__ import annotations

import pytest

from engine.trading import ExchangeLimits, Protections
from tests.engine.trading.scenario import HOUR, T0, flat, pair, run


def test_second_pair_is_sized_from_the_cash_the_first_left():
    a = pair(flat(4, 100.0), entry_long=[0])
    b = pair(flat(4, 50.0), entry_long=[0])
    result = run({"A": a, "B": b}, max_per_trade=0.6, fee_taker=0.001)
    trades = result.trades.set_index("pair")
    assert trades.loc["A", "amount"] * 100 == pytest.approx(600.0, rel=1e-12)
    cash_left = 1000 - 600 - 600 * 0.001
    assert trades.loc["B", "amount"] * 50 == pytest.approx(cash_left / 1.001, rel=1e-12)
    assert (trades["open_time"] == T0 + HOUR).all()


def test_same_time_entries_are_filled_in_pair_order():
    a = pair(flat(4, 100.0), entry_long=[0])
    b = pair(flat(4, 50.0), entry_long=[0])
    result = run({"B": b, "A": a}, max_per_trade=0.6)
    trades = result.trades.set_index("pair")
    assert trades.loc["B", "amount"] * 50 == pytest.approx(600.0)
    assert trades.loc["A", "amount"] * 100 == pytest.approx(400.0)


def test_max_open_trades_blocks_and_records_the_entry():
    a = pair(flat(4), entry_long=[0])
    b = pair(flat(4), entry_long=[0])
    result = run({"A": a, "B": b}, max_open_trades=1, max_per_trade=0.5)
    assert list(result.trades["pair"]) == ["A"]
    blocked = result.blocked
    assert len(blocked) == 1
    row = blocked.iloc[0]
    assert (row.pair, row.side, row.reason, row.time) == ("B", "long", "max_open_trades", T0 + HOUR)


def test_exposure_cap_limits_the_first_position_and_blocks_the_second():
    a = pair(flat(4), entry_long=[0])
    b = pair(flat(4), entry_long=[0])
    result = run({"A": a, "B": b}, max_exposure=0.5, fee_taker=0.001)
    assert list(result.trades["pair"]) == ["A"]
    assert result.trades.iloc[0].amount * 100 == pytest.approx(500.0)
    assert list(result.blocked["reason"]) == ["max_exposure"]


def test_risk_per_trade_sizes_from_the_stop_distance():
    result = run(pair(flat(4), entry_long=[0]), risk_per_trade=0.01, stop_loss=0.05)
    # Losing 5 % of the position must cost 1 % of 1000.
    assert result.trades.iloc[0].amount * 100 == pytest.approx(200.0)


def test_max_position_size_caps_the_notional():
    result = run(pair(flat(4), entry_long=[0]), protections=Protections(max_position_size=123.0))
    assert result.trades.iloc[0].amount * 100 == pytest.approx(123.0)


@pytest.mark.parametrize(("reinvest", "notional"), [(0.0, 500.0), (1.0, 550.0), (0.5, 525.0)])
def test_reinvested_share_of_profit_grows_the_sizing_capital(reinvest, notional):
    candles = [*flat(2), *flat(2, 120.0), *flat(3, 120.0)]
    p = pair(candles, entry_long=[0, 3], exit_long=[1])
    # First trade: 500 at 100, sold at 120 -> +100.
    result = run(p, max_per_trade=0.5, reinvest=reinvest)
    second = result.trades.iloc[1]
    assert result.trades.iloc[0].profit_abs == pytest.approx(100.0)
    assert second.amount * 120 == pytest.approx(notional)


def test_lot_size_rounds_the_amount_down_and_min_notional_blocks():
    limits = {"A": ExchangeLimits(min_notional=10.0, amount_step=0.1, price_tick=0.5)}
    result = run({"A": pair(flat(4, 3.0), entry_long=[0])}, max_per_trade=0.011, limits=limits)
    assert result.trades.iloc[0].amount == pytest.approx(3.6)  # 11 / 3 = 3.66.. -> 3.6
    blocked = run({"A": pair(flat(4, 3.0), entry_long=[0])}, max_per_trade=0.005, limits=limits).blocked
    assert list(blocked["reason"]) == ["min_notional"]  # 5 of notional < 10
    tiny = {"A": ExchangeLimits(amount_step=1.0)}
    blocked = run({"A": pair(flat(4, 300.0), entry_long=[0])}, max_per_trade=0.1, limits=tiny).blocked
    assert list(blocked["reason"]) == ["lot_size"]  # 100 / 300 rounds down to 0 units


def test_price_tick_rounds_the_stop():
    limits = {"A": ExchangeLimits(price_tick=0.5)}
    candles = [*flat(2), (100, 100, 97.0, 97.0), *flat(1, 97)]
    trade = run({"A": pair(candles, entry_long=[0])}, stop_loss=0.026, limits=limits).trades.iloc[0]
    assert trade.exit_reason == "stop_loss" and trade.close_price == pytest.approx(97.5)  # 97.4 -> 97.5


def test_invalid_strategy_stop_is_refused():
    candles = flat(4)
    blocked = run(pair(candles, entry_long=[0], stop_distance=[-1.0] * 4)).blocked
    assert list(blocked["reason"]) == ["invalid_stop"]


def _crash_day(n: int = 27) -> list[tuple[float, float, float, float]]:
    # 00:00 flat, 01:00 entry at 100, 02:00 falls to 90 and stays there.
    return [*flat(2), (100, 100, 90, 90), *flat(n - 3, 90.0)]


def test_daily_loss_limit_closes_positions_and_blocks_entries_until_the_next_utc_day():
    p = pair(_crash_day(), entry_long=[0, 3, 23])
    result = run(p, daily_loss_limit=0.05, daily_limit_closes_positions=True)
    first, second = result.trades.iloc[0], result.trades.iloc[1]
    assert first.exit_reason == "daily_limit"
    assert first.close_price == 90 and first.close_time == T0 + 3 * HOUR  # at the close of 02:00
    assert list(result.blocked["reason"]) == ["daily_loss_limit"]
    assert result.blocked.iloc[0].time == T0 + 4 * HOUR
    # The signal of 23:00 fills at 00:00 of the next day, when the limit has been reset.
    assert second.open_time == T0 + 24 * HOUR and second.exit_reason == "end_of_data"


def test_daily_loss_limit_without_closing_keeps_positions_and_blocks_other_pairs():
    a = pair(_crash_day(), entry_long=[0])
    b = pair(flat(27, 50.0), entry_long=[4])
    result = run({"A": a, "B": b}, daily_loss_limit=0.03, max_per_trade=0.5)
    assert list(result.trades["exit_reason"]) == ["end_of_data"]
    assert list(result.blocked["reason"]) == ["daily_loss_limit"]
    assert result.blocked.iloc[0].pair == "B"
