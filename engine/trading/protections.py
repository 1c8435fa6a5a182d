"""Protections: rules that pause entries after bad outcomes, shared by backtest and live.

Each guard is judged when its evidence changes (a trade closes, a UTC day ends) and leaves a pause
in the state (``*_PAUSE_UNTIL`` with the reason); entries only read those pauses.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.trading.layout import (
    A_DAY_START_EQ,
    A_EQUITY,
    B_DAILY_BLOCKED,
    B_DAY,
    B_LOSING_BLOCK,
    B_LOSING_STREAK,
    B_PAUSE_REASON,
    B_PAUSE_UNTIL,
    B_STARTED,
    BLOCK_COOLDOWN,
    BLOCK_LOSING_DAYS,
    BLOCK_LOW_PROFIT_PAIR,
    BLOCK_MAX_DRAWDOWN,
    BLOCK_STOPLOSS_GUARD,
    EXIT_STOP_LOSS,
    EXIT_TRAILING_STOP,
    F_LPP_MIN,
    F_MDD_MAX,
    I_COOLDOWN,
    I_LOSING_DAYS,
    I_LPP_LOOKBACK,
    I_LPP_STOP,
    I_LPP_TRADES,
    I_MDD_LOOKBACK,
    I_MDD_STOP,
    I_SLG_LIMIT,
    I_SLG_LOOKBACK,
    I_SLG_PER_PAIR,
    I_SLG_STOP,
    OK,
    Q_LAST_EXIT_BAR,
    Q_PAUSE_REASON,
    Q_PAUSE_UNTIL,
    T_EQUITY_AFTER,
    T_PROFIT_ABS,
    T_PROFIT_RATIO,
    U_CLOSE_TIME,
    U_PAIR,
)


@njit(cache=True)
def entry_pause_reason(
    acct_i: np.ndarray, pos_i: np.ndarray, prm_i: np.ndarray, pair: int, time: int, bar: int
) -> int:
    """The ``BLOCK_*`` code of a protection pausing entries on ``pair`` at ``time`` (bar number
    ``bar`` of the pair), or 0."""
    if acct_i[B_LOSING_BLOCK] != 0:
        return BLOCK_LOSING_DAYS
    if acct_i[B_PAUSE_UNTIL] > time:
        return acct_i[B_PAUSE_REASON]
    if pos_i[pair, Q_PAUSE_UNTIL] > time:
        return pos_i[pair, Q_PAUSE_REASON]
    cooldown = prm_i[I_COOLDOWN]
    if cooldown > 0 and bar <= pos_i[pair, Q_LAST_EXIT_BAR] + cooldown:
        return BLOCK_COOLDOWN
    return OK


@njit(cache=True)
def _pause_all(acct_i: np.ndarray, until: int, reason: int) -> None:
    if until > acct_i[B_PAUSE_UNTIL]:
        acct_i[B_PAUSE_UNTIL] = until
        acct_i[B_PAUSE_REASON] = reason


@njit(cache=True)
def _pause_pair(pos_i: np.ndarray, pair: int, until: int, reason: int) -> None:
    if until > pos_i[pair, Q_PAUSE_UNTIL]:
        pos_i[pair, Q_PAUSE_UNTIL] = until
        pos_i[pair, Q_PAUSE_REASON] = reason


@njit(cache=True)
def on_trade_closed(
    acct_i: np.ndarray,
    pos_i: np.ndarray,
    ring: np.ndarray,
    tr_f: np.ndarray,
    tr_i: np.ndarray,
    n_trades: int,
    prm_i: np.ndarray,
    prm_f: np.ndarray,
    pair: int,
    time: int,
    reason: int,
    profit_abs: float,
) -> None:
    """Judge the guards after trade ``n_trades - 1`` (already written to ``tr_*``) closed."""
    n_pairs = pos_i.shape[0]

    # Stop-loss guard: a ring of the last `limit` losing stop-out times per pair (+ one global row);
    # column 0 counts pushes. It triggers when the oldest of the last `limit` is inside the window.
    limit = prm_i[I_SLG_LIMIT]
    if limit > 0 and profit_abs < 0.0 and (reason in (EXIT_STOP_LOSS, EXIT_TRAILING_STOP)):
        per_pair = prm_i[I_SLG_PER_PAIR] != 0
        row = pair if per_pair else n_pairs
        count = ring[row, 0]
        ring[row, 1 + count % limit] = time
        count += 1
        ring[row, 0] = count
        if count >= limit and time - ring[row, 1 + count % limit] <= prm_i[I_SLG_LOOKBACK]:
            until = time + prm_i[I_SLG_STOP]
            if per_pair:
                _pause_pair(pos_i, pair, until, BLOCK_STOPLOSS_GUARD)
            else:
                _pause_all(acct_i, until, BLOCK_STOPLOSS_GUARD)
            ring[row, 0] = 0  # the next pause needs `limit` fresh stop-outs

    # Max drawdown: the equity peak around the trades closed within the window, each seen after it
    # closed and before it (its equity after, less its profit), against the equity now.
    max_dd = prm_f[F_MDD_MAX]
    if not math.isnan(max_dd):
        start = time - prm_i[I_MDD_LOOKBACK]
        now = tr_f[n_trades - 1, T_EQUITY_AFTER]
        peak = now
        k = n_trades - 1
        while k >= 0 and tr_i[k, U_CLOSE_TIME] >= start:
            after = tr_f[k, T_EQUITY_AFTER]
            peak = max(peak, after, after - tr_f[k, T_PROFIT_ABS])
            k -= 1
        if peak > 0.0 and (peak - now) / peak >= max_dd:
            _pause_all(acct_i, time + prm_i[I_MDD_STOP], BLOCK_MAX_DRAWDOWN)

    # Low-profit pairs: summed profit ratio of the pair's trades closed within the window.
    min_profit = prm_f[F_LPP_MIN]
    if not math.isnan(min_profit):
        start = time - prm_i[I_LPP_LOOKBACK]
        total = 0.0
        count = 0
        k = n_trades - 1
        while k >= 0 and tr_i[k, U_CLOSE_TIME] >= start:
            if tr_i[k, U_PAIR] == pair:
                total += tr_f[k, T_PROFIT_RATIO]
                count += 1
            k -= 1
        if count >= prm_i[I_LPP_TRADES] and total < min_profit:
            _pause_pair(pos_i, pair, time + prm_i[I_LPP_STOP], BLOCK_LOW_PROFIT_PAIR)


@njit(cache=True)
def roll_day(acct_f: np.ndarray, acct_i: np.ndarray, prm_i: np.ndarray, day: int) -> None:
    """Start UTC day ``day``: judge the day that ended, reset the daily loss limit."""
    equity = acct_f[A_EQUITY]
    if acct_i[B_STARTED] == 0:
        acct_i[B_STARTED] = 1
    else:
        if equity < acct_f[A_DAY_START_EQ]:
            acct_i[B_LOSING_STREAK] += 1
        else:
            acct_i[B_LOSING_STREAK] = 0
    losing_days = prm_i[I_LOSING_DAYS]
    acct_i[B_LOSING_BLOCK] = 1 if losing_days > 0 and acct_i[B_LOSING_STREAK] >= losing_days else 0
    acct_f[A_DAY_START_EQ] = equity
    acct_i[B_DAILY_BLOCKED] = 0
    acct_i[B_DAY] = day
