"""The strategy's size in the live Trader (the runtime's path): a fraction of the stake, decided with
the entry on the signal candle, clipped (above 1: the full stake; 0, below or NaN: no entry), kept
through a checkpoint while the entry is pending, and used by the exchange modes' entry preview."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.runtime.checkpoint import dump_state, load_state
from engine.trading import Candle, Fill, Order, Signals, Trader, TradingParams
from engine.trading import layout as L
from tests.engine.trading.scenario import HOUR, T0

PARAMS = TradingParams(initial_capital=1000.0, fee_taker=0.001, max_per_trade=0.5)
FULL = 500 / 100  # max_per_trade 50% of 1000 at a price of 100


def _flat(k: int) -> Candle:
    return Candle(T0 + k * HOUR, 100, 100, 100, 100)


def _entry(size: float) -> tuple[Trader, list]:
    trader = Trader(["A"], PARAMS, timeframe="1h")
    decided = trader.on_candle("A", _flat(0), Signals(entry_long=True, size=size))
    return trader, decided


def _opened(trader: Trader) -> float | None:
    events = trader.on_candle("A", _flat(1), Signals())
    fills = [e for e in events if isinstance(e, Fill) and e.action == "open"]
    return fills[0].amount if fills else None


@pytest.mark.parametrize(("size", "amount"), [(1.0, FULL), (0.5, FULL / 2), (0.01, FULL / 100)])
def test_the_entry_stakes_that_fraction(size, amount):
    trader, decided = _entry(size)
    assert decided == [Order("A", T0, "open_long")]
    assert _opened(trader) == pytest.approx(amount, rel=1e-12)


@pytest.mark.parametrize("size", [1.5, 1e300, math.inf])
def test_above_one_is_the_full_stake(size):
    trader, _ = _entry(size)
    assert _opened(trader) == FULL  # exactly: the same operations as without a size


@pytest.mark.parametrize("size", [0.0, -0.5, -math.inf, math.nan])
def test_zero_below_or_nan_is_no_entry(size):
    trader, decided = _entry(size)
    assert decided == []  # no order, and nothing refused: the entry is not taken
    assert _opened(trader) is None
    assert trader.blocked().empty


def test_a_pending_sized_entry_keeps_its_size_through_a_checkpoint():
    trader, _ = _entry(0.25)
    restarted = Trader(["A"], PARAMS, timeframe="1h")
    restarted.state = load_state(dump_state(trader.state))
    assert _opened(restarted) == pytest.approx(FULL / 4, rel=1e-12)


def test_a_pending_entry_in_a_checkpoint_from_before_sizes_takes_the_full_stake():
    trader, _ = _entry(0.25)
    state = trader.state
    state.pos_f = np.ascontiguousarray(state.pos_f[:, : L.P_PEND_SZ])  # the older layout, no size column
    restarted = Trader(["A"], PARAMS, timeframe="1h")
    restarted.state = load_state(dump_state(state))
    assert restarted.state.pos_f.shape[1] == L.N_POS_F
    assert _opened(restarted) == FULL


def test_the_exchange_modes_preview_the_sized_amount():
    trader, _ = _entry(0.4)
    amount, refused = trader.entry_preview("A", 100.0, T0 + HOUR)
    assert refused is None and amount == pytest.approx(FULL * 0.4, rel=1e-12)
