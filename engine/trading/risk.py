"""The risk manager's decisions as plain functions of numbers.

They are numba-compiled (``cache=True``) because the kernel calls them once per entry; called from
Python they behave like ordinary typed functions. ``side`` is 1 for a long and -1 for a short; a
disabled rule is NaN (a ratio) or -1 (a count).
"""

from __future__ import annotations

import math

from numba import njit

from engine.trading.layout import (
    BLOCK_DAILY_LOSS_LIMIT,
    BLOCK_MAX_EXPOSURE,
    BLOCK_MAX_OPEN_TRADES,
    OK,
)

__all__ = [
    "calculate_position_size",
    "calculate_stop_loss",
    "calculate_take_profit",
    "check_daily_limits",
    "floor_to_step",
    "position_notional",
    "round_to_step",
    "should_open_position",
]


@njit(cache=True)
def calculate_position_size(capital: float, risk_percent: float, stop_loss_pct: float) -> float:
    """Notional (quote currency) of a position that loses ``risk_percent`` of ``capital`` when its
    stop, ``stop_loss_pct`` away from the entry, is hit. Without a usable stop the risk rule cannot
    size anything and gives infinity (the other caps then decide)."""
    if not stop_loss_pct > 0.0 or not risk_percent > 0.0:
        return math.inf
    return capital * risk_percent / stop_loss_pct


@njit(cache=True)
def should_open_position(
    open_trades: int,
    max_open_trades: int,
    exposure: float,
    equity: float,
    max_exposure: float,
    daily_blocked: bool,
) -> int:
    """0 when a new position may be opened, else the ``layout.BLOCK_*`` code of the first rule that
    refuses it. ``max_open_trades < 0`` means unlimited."""
    if daily_blocked:
        return BLOCK_DAILY_LOSS_LIMIT
    if max_open_trades >= 0 and open_trades >= max_open_trades:
        return BLOCK_MAX_OPEN_TRADES
    if exposure >= max_exposure * equity:
        return BLOCK_MAX_EXPOSURE
    return OK


@njit(cache=True)
def calculate_stop_loss(entry_price: float, side: int, stop_distance: float, stop_loss_pct: float) -> float:
    """Stop price: the strategy's price distance when given, else the percentage, else NaN (none)."""
    if not math.isnan(stop_distance):
        return entry_price - side * stop_distance
    if not math.isnan(stop_loss_pct):
        return entry_price * (1.0 - side * stop_loss_pct)
    return math.nan


@njit(cache=True)
def calculate_take_profit(entry_price: float, side: int, tp_distance: float, take_profit_pct: float) -> float:
    """Target price: the strategy's price distance when given, else the percentage, else NaN (none)."""
    if not math.isnan(tp_distance):
        return entry_price + side * tp_distance
    if not math.isnan(take_profit_pct):
        return entry_price * (1.0 + side * take_profit_pct)
    return math.nan


@njit(cache=True)
def check_daily_limits(day_start_equity: float, equity: float, daily_loss_limit: float) -> bool:
    """True when equity has lost ``daily_loss_limit`` (a ratio) of what it was at the day's start."""
    if math.isnan(daily_loss_limit):
        return False
    return equity <= day_start_equity * (1.0 - daily_loss_limit)


@njit(cache=True)
def position_notional(
    capital: float,
    cash: float,
    exposure: float,
    equity: float,
    stop_loss_pct: float,
    max_per_trade: float,
    risk_per_trade: float,
    max_exposure: float,
    max_position: float,
    fee: float,
) -> float:
    """Notional of a new position: the smallest of the per-trade cap, the risk-based size, the
    absolute cap, the room left under the exposure cap and the cash left after the entry fee."""
    notional = max_per_trade * capital
    if not math.isnan(risk_per_trade):
        notional = min(notional, calculate_position_size(capital, risk_per_trade, stop_loss_pct))
    if not math.isnan(max_position):
        notional = min(notional, max_position)
    notional = min(notional, max_exposure * equity - exposure)
    return min(notional, cash / (1.0 + fee))


@njit(cache=True)
def floor_to_step(value: float, step: float) -> float:
    """``value`` rounded down to a multiple of ``step`` (an exchange lot size); unchanged if step is 0."""
    if step <= 0.0:
        return value
    # The small epsilon keeps 0.3 / 0.1 = 2.9999999999999996 from losing a whole step.
    return math.floor(value / step + 1e-9) * step


@njit(cache=True)
def round_to_step(value: float, step: float) -> float:
    """``value`` rounded to the nearest multiple of ``step`` (a price tick); unchanged if step is 0."""
    if step <= 0.0 or math.isnan(value):
        return value
    return round(value / step) * step
