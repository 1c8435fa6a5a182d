"""The live Trader: events per closed candle, input checks, and agreement with the backtest."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.trading import Blocked, Candle, Fill, Order, Signals, Trader, TradingParams
from engine.trading.risk import (
    calculate_position_size,
    calculate_stop_loss,
    calculate_take_profit,
    check_daily_limits,
    floor_to_step,
    position_notional,
    should_open_position,
)
from tests.engine.trading.scenario import HOUR, T0

PARAMS = TradingParams(
    initial_capital=1000.0, fee_maker=0.0, fee_taker=0.001, stop_loss=0.05, max_per_trade=0.5
)


def candle(k: int, o: float, h: float, lo: float, c: float) -> Candle:
    return Candle(T0 + k * HOUR, o, h, lo, c)


def test_events_follow_an_order_from_decision_to_fill_to_stop():
    trader = Trader(["A", "B"], PARAMS, timeframe="1h")
    events = trader.on_candle("A", candle(0, 100, 100, 100, 100), Signals(entry_long=True))
    assert events == [Order("A", T0, "open_long")]

    events = trader.on_candle("A", candle(1, 100, 101, 94, 96), Signals())
    amount = 500 / 100
    assert events == [
        Fill("A", T0 + HOUR, "long", "open", 100.0, amount, amount * 100 * 0.001, "entry"),
        Fill("A", T0 + HOUR, "long", "close", 95.0, amount, amount * 95 * 0.001, "stop_loss"),
    ]
    assert trader.position("A") is None
    assert len(trader.trades()) == 1


def test_refused_entries_come_back_as_blocked_events():
    params = TradingParams(initial_capital=1000.0, max_open_trades=1, max_per_trade=0.5)
    trader = Trader(["A", "B"], params, timeframe="1h")
    flat = {p: (candle(0, 10, 10, 10, 10), Signals(entry_long=True)) for p in ("A", "B")}
    trader.on_candles(flat)
    events = trader.on_candles({p: (candle(1, 10, 10, 10, 10), Signals()) for p in ("A", "B")})
    assert [type(e) for e in events] == [Fill, Blocked]
    assert events[1] == Blocked("B", T0 + HOUR, "long", "max_open_trades")
    assert trader.position("A")["amount"] == pytest.approx(50.0)


def test_position_view_and_close_all():
    trader = Trader(["A"], PARAMS, timeframe="1h")
    trader.on_candle("A", candle(0, 100, 100, 100, 100), Signals(entry_long=True))
    trader.on_candle("A", candle(1, 100, 103, 99, 102), Signals())
    position = trader.position("A")
    assert position["side"] == "long" and position["stop"] == pytest.approx(95.0)
    assert math.isnan(position["trailing_stop"])
    fills = trader.close_all()
    assert [(f.action, f.reason, f.price, f.time) for f in fills] == [
        ("close", "end_of_data", 102.0, T0 + 2 * HOUR)
    ]
    assert trader.equity == pytest.approx(trader.state.cash)


def test_detail_candles_resolve_inside_the_candle():
    params = TradingParams(
        initial_capital=1000.0, fee_taker=0.0, fee_maker=0.0, stop_loss=0.05, take_profit=0.1
    )
    minutes = [
        Candle(T0 + HOUR, 100, 111, 99, 110),
        Candle(T0 + HOUR + pd.Timedelta("1min"), 110, 110, 94, 95),
    ]
    trader = Trader(["A"], params, timeframe="1h")
    trader.on_candle("A", candle(0, 100, 100, 100, 100), Signals(entry_long=True))
    events = trader.on_candle("A", candle(1, 100, 111, 94, 95), Signals(), detail=minutes)
    assert events[-1].reason == "take_profit" and events[-1].price == pytest.approx(110.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.on_candle("C", candle(0, 1, 1, 1, 1), Signals()), "unknown pair 'C'"),
        (lambda t: t.on_candle("A", candle(0, 1, 1, float("nan"), 1), Signals()), "invalid candle"),
        (lambda t: t.on_candle("A", candle(0, 1, 0.5, 0.9, 1), Signals()), "invalid candle"),
        (
            lambda t: t.on_candles(
                {"A": (candle(0, 1, 1, 1, 1), Signals()), "B": (candle(1, 1, 1, 1, 1), Signals())}
            ),
            "same open time",
        ),
    ],
)
def test_bad_live_input_is_a_clear_error(call, message):
    trader = Trader(["A", "B"], PARAMS, timeframe="1h")
    with pytest.raises(ValueError, match=message):
        call(trader)


def test_candles_must_move_forward():
    trader = Trader(["A", "B"], PARAMS, timeframe="1h")
    trader.on_candle("A", candle(1, 1, 1, 1, 1), Signals())
    with pytest.raises(ValueError, match="already processed"):
        trader.on_candle("A", candle(1, 1, 1, 1, 1), Signals())
    with pytest.raises(ValueError, match="before the last candle"):
        trader.on_candle("B", candle(0, 1, 1, 1, 1), Signals())


def test_risk_functions_as_plain_calls():
    assert calculate_position_size(10_000.0, 0.01, 0.02) == pytest.approx(5_000.0)
    assert calculate_position_size(10_000.0, 0.01, math.nan) == math.inf
    assert calculate_stop_loss(100.0, 1, math.nan, 0.05) == pytest.approx(95.0)
    assert calculate_stop_loss(100.0, -1, 2.0, 0.05) == pytest.approx(102.0)
    assert math.isnan(calculate_stop_loss(100.0, 1, math.nan, math.nan))
    assert calculate_take_profit(100.0, 1, math.nan, 0.1) == pytest.approx(110.0)
    assert calculate_take_profit(100.0, -1, math.nan, 0.1) == pytest.approx(90.0)
    assert check_daily_limits(1000.0, 949.0, 0.05) and not check_daily_limits(1000.0, 951.0, 0.05)
    assert not check_daily_limits(1000.0, 1.0, math.nan)
    assert should_open_position(2, 2, 0.0, 1000.0, 1.0, False) == 1  # max_open_trades
    assert should_open_position(0, -1, 800.0, 1000.0, 0.8, False) == 2  # max_exposure
    assert should_open_position(0, -1, 0.0, 1000.0, 1.0, True) == 6  # daily_loss_limit
    assert should_open_position(1, 2, 100.0, 1000.0, 0.5, False) == 0
    notional = position_notional(1000.0, 300.0, 0.0, 1000.0, 0.02, 0.5, 0.01, 1.0, math.nan, 0.0)
    assert notional == pytest.approx(300.0)  # risk says 500, per-trade cap 500, cash 300
    assert floor_to_step(0.3, 0.1) == pytest.approx(0.3) and floor_to_step(0.29, 0.1) == pytest.approx(0.2)


def test_trader_state_is_plain_numpy():
    trader = Trader(["A"], PARAMS, timeframe="1h")
    arrays = [trader.state.acct_f, trader.state.pos_i, trader.state.tr_f, trader.state.bl]
    assert all(isinstance(a, np.ndarray) for a in arrays)


def test_restop_recalculates_an_open_positions_levels_under_new_rules():
    trader = Trader(["A"], PARAMS, timeframe="1h")
    assert trader.restop("A", Signals()) is None  # nothing held
    trader.on_candle("A", candle(0, 100, 100, 100, 100), Signals(entry_long=True))
    trader.on_candle("A", candle(1, 100, 101, 99, 100), Signals())
    assert trader.position("A")["stop"] == pytest.approx(95.0)  # 5% under the entry at 100

    # A reload: 2% stop and a 4% target from now on (the parameters a bot's _apply_replacement packs).
    wider = TradingParams(
        initial_capital=1000.0,
        fee_maker=0.0,
        fee_taker=0.001,
        stop_loss=0.02,
        take_profit=0.04,
        max_per_trade=0.5,
    )
    trader.state.prm_i, trader.state.prm_f = wider.pack()
    assert trader.restop("A", Signals()) == (pytest.approx(98.0), pytest.approx(104.0))
    # The strategy's own distance wins over the percentage, as at an entry; then the ATR multiple.
    assert trader.restop("A", Signals(stop_distance=3.0, take_profit_distance=10.0)) == (97.0, 110.0)
    events = trader.on_candle("A", candle(2, 100, 100.5, 96.5, 99), Signals())
    assert [(e.reason, e.price) for e in events if isinstance(e, Fill)] == [("stop_loss", 97.0)]
