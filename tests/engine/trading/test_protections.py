"""Protections: cooldown, stop-loss guard, max drawdown, low-profit pairs, losing days."""

from __future__ import annotations

from engine.trading import LowProfitPairs, MaxDrawdown, Protections, StoplossGuard
from tests.engine.trading.scenario import HOUR, T0, flat, pair, run

DROP = (100.0, 100.0, 94.0, 95.0)  # touches a 5 % stop from 100


def test_cooldown_blocks_entries_for_n_candles_after_an_exit():
    p = pair(flat(10), entry_long=[0, 3, 4, 5], exit_long=[2])
    result = run(p, protections=Protections(cooldown_bars=2))
    # Exit at the open of 03:00; the opens of 04:00 and 05:00 are in the cooldown.
    assert list(result.blocked["reason"]) == ["cooldown", "cooldown"]
    assert list(result.blocked["time"]) == [T0 + 4 * HOUR, T0 + 5 * HOUR]
    assert result.trades.iloc[1].open_time == T0 + 6 * HOUR


def test_without_cooldown_the_next_candle_can_enter_again():
    p = pair(flat(6), entry_long=[0, 3], exit_long=[2])
    result = run(p)
    assert list(result.trades["open_time"]) == [T0 + HOUR, T0 + 4 * HOUR]


def _two_stop_outs(n: int = 16) -> list[tuple[float, float, float, float]]:
    candles = flat(n)
    candles[2] = DROP
    candles[5] = DROP
    return candles


def test_stoploss_guard_pauses_every_pair_after_n_stop_outs():
    guard = StoplossGuard(trade_limit=2, lookback="1d", stop_duration="6h")
    a = pair(_two_stop_outs(), entry_long=[0, 3, 6, 11])
    b = pair(flat(16, 50.0), entry_long=[8])
    result = run(
        {"A": a, "B": b}, stop_loss=0.05, max_per_trade=0.5, protections=Protections(stoploss_guard=guard)
    )
    trades = result.trades
    assert list(trades[trades.pair == "A"]["exit_reason"])[:2] == ["stop_loss", "stop_loss"]
    # Second stop-out during 05:00 -> paused until 11:00.
    assert list(zip(result.blocked["pair"], result.blocked["reason"], strict=True)) == [
        ("A", "stoploss_guard"),
        ("B", "stoploss_guard"),
    ]
    assert trades[trades.pair == "A"].iloc[2].open_time == T0 + 12 * HOUR


def test_stoploss_guard_per_pair_leaves_other_pairs_alone():
    guard = StoplossGuard(trade_limit=2, lookback="1d", stop_duration="6h", only_per_pair=True)
    a = pair(_two_stop_outs(), entry_long=[0, 3, 6])
    b = pair(flat(16, 50.0), entry_long=[8])
    result = run(
        {"A": a, "B": b}, stop_loss=0.05, max_per_trade=0.5, protections=Protections(stoploss_guard=guard)
    )
    assert list(result.blocked["pair"]) == ["A"]
    assert "B" in set(result.trades["pair"])


def test_stop_outs_spread_wider_than_the_lookback_do_not_trigger_the_guard():
    guard = StoplossGuard(trade_limit=2, lookback="2h", stop_duration="6h")
    result = run(
        pair(_two_stop_outs(), entry_long=[0, 3, 6]),
        stop_loss=0.05,
        protections=Protections(stoploss_guard=guard),
    )
    assert result.blocked.empty and len(result.trades) == 3


def test_max_drawdown_guard_pauses_entries():
    guard = MaxDrawdown(max_ratio=0.04, lookback="1d", stop_duration="6h")
    candles = flat(12)
    candles[2] = DROP
    result = run(
        pair(candles, entry_long=[0, 4, 8]), stop_loss=0.05, protections=Protections(max_drawdown=guard)
    )
    # All-in stop-out: 1000 -> 950, a 5 % drawdown; paused from 02:00 until 08:00.
    assert list(result.blocked["reason"]) == ["max_drawdown"]
    assert result.blocked.iloc[0].time == T0 + 5 * HOUR
    assert result.trades.iloc[1].open_time == T0 + 9 * HOUR


def test_low_profit_pair_is_paused():
    guard = LowProfitPairs(min_profit=0.0, lookback="1d", stop_duration="6h")
    candles = flat(12)
    candles[2] = DROP
    result = run(
        pair(candles, entry_long=[0, 4, 8]), stop_loss=0.05, protections=Protections(low_profit_pairs=guard)
    )
    assert list(result.blocked["reason"]) == ["low_profit_pair"]
    assert result.trades.iloc[1].open_time == T0 + 9 * HOUR


def test_losing_days_pause_the_next_day():
    candles = flat(72)
    candles[2] = DROP
    candles[3:] = flat(69, 95.0)
    p = pair(candles, entry_long=[0, 30, 50])
    result = run(p, stop_loss=0.05, protections=Protections(max_consecutive_losing_days=1))
    # Day 1 lost; day 2 is paused; day 2 lost nothing, so day 3 trades again.
    assert list(result.blocked["reason"]) == ["max_consecutive_losing_days"]
    assert result.blocked.iloc[0].time == T0 + 31 * HOUR
    assert result.trades.iloc[1].open_time == T0 + 51 * HOUR
