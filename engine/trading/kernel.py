"""The one implementation of positions, fills, stops and risk: a step over closed candles.

:func:`run_events` processes candle events ``[start, end)``, already sorted by (time, pair). The
backtest passes every candle of every pair at once; the live :class:`~engine.trading.trader.Trader`
passes the candles that closed at one moment. Both hand over the same state arrays
(:class:`~engine.trading.state.TradingState`), so both paths run the same compiled code.

One time step (all pairs whose candle opens at the same time ``t``) runs in three phases:

A. fills at the open of ``t``: orders decided on the previous closed candle (exit, then entry, so a
   reversal reuses the freed cash), entries sized and checked by the risk manager;
B. inside each candle: stop, take-profit, trailing and profit lock, on the candle or on its detail
   candles (bar magnifier), then the position is marked at the close;
C. at the close: equity, the daily loss limit, and the candle's signals turned into orders for the
   next open.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.trading._jitcache import invalidate_stale_cache
from engine.trading.layout import (
    A_CASH,
    A_DAY_START_EQ,
    A_EQUITY,
    A_FEES,
    A_REALIZED,
    B_DAILY_BLOCKED,
    B_DAY,
    B_N_BLOCKED,
    B_N_OPEN,
    B_N_TRADES,
    B_STARTED,
    BLOCK_INSUFFICIENT_CAPITAL,
    BLOCK_INVALID_STOP,
    BLOCK_LOT_SIZE,
    BLOCK_MIN_NOTIONAL,
    DAY_NS,
    EXIT_DAILY_LIMIT,
    EXIT_FAST,
    EXIT_SIGNAL,
    EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT,
    EXIT_TRAILING_STOP,
    F_DAILY_LIMIT,
    F_FEE_MAKER,
    F_FEE_TAKER,
    F_INITIAL,
    F_LOCK_ACT,
    F_LOCK_KEEP,
    F_MAX_EXPOSURE,
    F_MAX_PER_TRADE,
    F_MAX_POSITION,
    F_REINVEST,
    F_RISK,
    F_SL_ATR,
    F_SL_PCT,
    F_SLIPPAGE,
    F_TP_ATR,
    F_TP_PCT,
    F_TRAIL_ACT,
    F_TRAIL_DIST,
    I_DAILY_CLOSE,
    I_FUTURES,
    I_MAX_OPEN,
    K_PAIR,
    K_REASON,
    K_SIDE,
    K_TIME,
    L_AMOUNT_STEP,
    L_MIN_NOTIONAL,
    L_PRICE_TICK,
    OK,
    P_AMOUNT,
    P_BEST,
    P_ENTRY,
    P_FAST,
    P_FEE_IN,
    P_LOCK,
    P_MARK,
    P_PEND_SD,
    P_PEND_SZ,
    P_PEND_TD,
    P_STOP,
    P_TP,
    P_TRAIL,
    Q_BARS,
    Q_ENTRY_BAR,
    Q_ENTRY_TIME,
    Q_LAST_EXIT_BAR,
    Q_LAST_TIME,
    Q_PEND_ENTRY,
    Q_PEND_EXIT,
    Q_PEND_TIME,
    Q_SIDE,
    T_AMOUNT,
    T_CLOSE_PRICE,
    T_EQUITY_AFTER,
    T_FEE_IN,
    T_FEE_OUT,
    T_OPEN_PRICE,
    T_PROFIT_ABS,
    T_PROFIT_RATIO,
    U_CLOSE_TIME,
    U_OPEN_TIME,
    U_PAIR,
    U_REASON,
    U_SIDE,
)
from engine.trading.protections import entry_pause_reason, on_trade_closed, roll_day
from engine.trading.risk import (
    calculate_stop_loss,
    calculate_take_profit,
    check_daily_limits,
    floor_to_step,
    position_notional,
    round_to_step,
    should_open_position,
)

__all__ = ["force_close_all", "run_events"]

invalidate_stale_cache()

# A position smaller than this share of the initial capital is float dust, not a trade.
_DUST = 1e-6


@njit(cache=True)
def _equity(acct_f: np.ndarray, pos_f: np.ndarray, pos_i: np.ndarray) -> float:
    equity = acct_f[A_CASH]
    for p in range(pos_i.shape[0]):
        side = pos_i[p, Q_SIDE]
        if side != 0:
            amount = pos_f[p, P_AMOUNT]
            entry = pos_f[p, P_ENTRY]
            equity += amount * entry + side * amount * (pos_f[p, P_MARK] - entry)
    return equity


@njit(cache=True)
def _exposure(pos_f: np.ndarray, pos_i: np.ndarray) -> float:
    total = 0.0
    for p in range(pos_i.shape[0]):
        if pos_i[p, Q_SIDE] != 0:
            total += pos_f[p, P_AMOUNT] * pos_f[p, P_MARK]
    return total


@njit(cache=True)
def _close(
    acct_f: np.ndarray,
    acct_i: np.ndarray,
    pos_f: np.ndarray,
    pos_i: np.ndarray,
    ring: np.ndarray,
    tr_f: np.ndarray,
    tr_i: np.ndarray,
    prm_i: np.ndarray,
    prm_f: np.ndarray,
    p: int,
    price: float,
    time: int,
    reason: int,
    fee_rate: float,
) -> None:
    side = pos_i[p, Q_SIDE]
    amount = pos_f[p, P_AMOUNT]
    entry = pos_f[p, P_ENTRY]
    fee_in = pos_f[p, P_FEE_IN]
    gross = side * amount * (price - entry)
    fee_out = amount * price * fee_rate
    # The position's margin (its entry notional) comes back with the gross result.
    acct_f[A_CASH] += amount * entry + gross - fee_out
    profit = gross - fee_in - fee_out
    acct_f[A_REALIZED] += profit
    acct_f[A_FEES] += fee_out
    pos_i[p, Q_SIDE] = 0
    pos_i[p, Q_LAST_EXIT_BAR] = pos_i[p, Q_BARS]
    acct_i[B_N_OPEN] -= 1

    k = acct_i[B_N_TRADES]
    tr_f[k, T_OPEN_PRICE] = entry
    tr_f[k, T_CLOSE_PRICE] = price
    tr_f[k, T_AMOUNT] = amount
    tr_f[k, T_PROFIT_ABS] = profit
    tr_f[k, T_PROFIT_RATIO] = profit / (amount * entry)
    tr_f[k, T_FEE_IN] = fee_in
    tr_f[k, T_FEE_OUT] = fee_out
    tr_f[k, T_EQUITY_AFTER] = _equity(acct_f, pos_f, pos_i)
    tr_i[k, U_PAIR] = p
    tr_i[k, U_SIDE] = side
    tr_i[k, U_OPEN_TIME] = pos_i[p, Q_ENTRY_TIME]
    tr_i[k, U_CLOSE_TIME] = time
    tr_i[k, U_REASON] = reason
    acct_i[B_N_TRADES] = k + 1
    on_trade_closed(acct_i, pos_i, ring, tr_f, tr_i, k + 1, prm_i, prm_f, p, time, reason, profit)


@njit(cache=True)
def _block(acct_i: np.ndarray, bl: np.ndarray, time: int, p: int, side: int, reason: int) -> None:
    k = acct_i[B_N_BLOCKED]
    bl[k, K_TIME] = time
    bl[k, K_PAIR] = p
    bl[k, K_SIDE] = side
    bl[k, K_REASON] = reason
    acct_i[B_N_BLOCKED] = k + 1


@njit(cache=True)
def _open(
    acct_f: np.ndarray,
    acct_i: np.ndarray,
    pos_f: np.ndarray,
    pos_i: np.ndarray,
    bl: np.ndarray,
    prm_i: np.ndarray,
    prm_f: np.ndarray,
    lim: np.ndarray,
    p: int,
    side: int,
    open_price: float,
    time: int,
) -> None:
    """Open a position at the open of the current candle, or record why the risk manager refused."""
    bar = pos_i[p, Q_BARS]
    reason = entry_pause_reason(acct_i, pos_i, prm_i, p, time, bar)
    equity = _equity(acct_f, pos_f, pos_i)
    exposure = _exposure(pos_f, pos_i)
    if reason == OK:
        reason = should_open_position(
            acct_i[B_N_OPEN],
            prm_i[I_MAX_OPEN],
            exposure,
            equity,
            prm_f[F_MAX_EXPOSURE],
            acct_i[B_DAILY_BLOCKED] != 0,
        )
    fee = prm_f[F_FEE_TAKER]
    fill = open_price * (1.0 + side * prm_f[F_SLIPPAGE])
    tick = lim[p, L_PRICE_TICK]
    stop = round_to_step(calculate_stop_loss(fill, side, pos_f[p, P_PEND_SD], prm_f[F_SL_PCT]), tick)
    target = round_to_step(calculate_take_profit(fill, side, pos_f[p, P_PEND_TD], prm_f[F_TP_PCT]), tick)
    if reason == OK and (
        (not math.isnan(stop) and side * (fill - stop) <= 0.0)
        or (not math.isnan(target) and side * (target - fill) <= 0.0)
    ):
        reason = BLOCK_INVALID_STOP
    amount = 0.0
    if reason == OK:
        stop_pct = side * (fill - stop) / fill if not math.isnan(stop) else math.nan
        realized = acct_f[A_REALIZED]
        initial = prm_f[F_INITIAL]
        capital = initial + (realized if realized < 0.0 else prm_f[F_REINVEST] * realized)
        notional = position_notional(
            capital,
            acct_f[A_CASH],
            exposure,
            equity,
            stop_pct,
            prm_f[F_MAX_PER_TRADE],
            prm_f[F_RISK],
            prm_f[F_MAX_EXPOSURE],
            prm_f[F_MAX_POSITION],
            fee,
        )
        fraction = pos_f[p, P_PEND_SZ]
        if fraction < 1.0:  # the strategy's size (never NaN here: NaN is the full stake)
            notional *= fraction
        if notional <= _DUST * initial:
            reason = BLOCK_INSUFFICIENT_CAPITAL
        else:
            amount = floor_to_step(notional / fill, lim[p, L_AMOUNT_STEP])
            if amount <= 0.0:
                reason = BLOCK_LOT_SIZE
            elif amount * fill < lim[p, L_MIN_NOTIONAL]:
                reason = BLOCK_MIN_NOTIONAL
    if reason != OK:
        _block(acct_i, bl, time, p, side, reason)
        return
    fee_in = amount * fill * fee
    acct_f[A_CASH] -= amount * fill + fee_in
    acct_f[A_FEES] += fee_in
    pos_i[p, Q_SIDE] = side
    pos_i[p, Q_ENTRY_TIME] = time
    pos_i[p, Q_ENTRY_BAR] = bar
    pos_f[p, P_AMOUNT] = amount
    pos_f[p, P_ENTRY] = fill
    pos_f[p, P_STOP] = stop
    pos_f[p, P_TP] = target
    pos_f[p, P_BEST] = fill
    pos_f[p, P_TRAIL] = math.nan
    pos_f[p, P_LOCK] = math.nan
    pos_f[p, P_FEE_IN] = fee_in
    pos_f[p, P_MARK] = fill
    acct_i[B_N_OPEN] += 1


@njit(cache=True)
def _effective_stop(pos_f: np.ndarray, p: int, side: int) -> tuple[float, int]:
    """The tightest of the initial stop, the profit lock and the trailing stop, with its exit reason."""
    level = pos_f[p, P_STOP]
    reason = EXIT_STOP_LOSS
    lock = pos_f[p, P_LOCK]
    if not math.isnan(lock) and (math.isnan(level) or side * (lock - level) > 0.0):
        level = lock
    trail = pos_f[p, P_TRAIL]
    if not math.isnan(trail) and (math.isnan(level) or side * (trail - level) > 0.0):
        level = trail
        reason = EXIT_TRAILING_STOP
    return level, reason


@njit(cache=True)
def _favourable(pos_f: np.ndarray, prm_f: np.ndarray, p: int, side: int, price: float) -> None:
    """The price reached ``price``: move the best price, the trailing stop and the profit lock."""
    best = pos_f[p, P_BEST]
    if side * (price - best) > 0.0:
        best = price
        pos_f[p, P_BEST] = best
    entry = pos_f[p, P_ENTRY]
    move = side * (best - entry) / entry
    activate = prm_f[F_TRAIL_ACT]
    if not math.isnan(activate) and move >= activate:
        level = best * (1.0 - side * prm_f[F_TRAIL_DIST])
        current = pos_f[p, P_TRAIL]
        if math.isnan(current) or side * (level - current) > 0.0:
            pos_f[p, P_TRAIL] = level
    lock_at = prm_f[F_LOCK_ACT]
    if not math.isnan(lock_at) and move >= lock_at and math.isnan(pos_f[p, P_LOCK]):
        pos_f[p, P_LOCK] = entry * (1.0 + side * prm_f[F_LOCK_KEEP])


@njit(cache=True)
def _resolve_bar(
    pos_f: np.ndarray,
    prm_f: np.ndarray,
    p: int,
    side: int,
    o: float,
    h: float,
    lo: float,
    c: float,
) -> tuple[float, int, bool]:
    """Walk one candle along its pessimistic path: open, then the adverse extreme (the low for a
    long), then the favourable one, then the close. Returns (fill price, exit reason, maker fill);
    reason 0 when the position survives the candle."""
    slip = prm_f[F_SLIPPAGE]
    adverse = lo if side > 0 else h
    favour = h if side > 0 else lo
    target = pos_f[p, P_TP]
    has_target = not math.isnan(target)

    stop, why = _effective_stop(pos_f, p, side)
    if not math.isnan(stop) and side * (o - stop) <= 0.0:
        return o * (1.0 - side * slip), why, False  # gapped through the stop: filled at the open
    if has_target and side * (o - target) >= 0.0:
        return o, EXIT_TAKE_PROFIT, True  # the resting limit order fills at the better open
    _favourable(pos_f, prm_f, p, side, o)
    stop, why = _effective_stop(pos_f, p, side)
    if not math.isnan(stop) and side * (adverse - stop) <= 0.0:
        return stop * (1.0 - side * slip), why, False
    if has_target and side * (favour - target) >= 0.0:
        return target, EXIT_TAKE_PROFIT, True
    _favourable(pos_f, prm_f, p, side, favour)
    stop, why = _effective_stop(pos_f, p, side)
    if not math.isnan(stop) and side * (c - stop) <= 0.0:
        return stop * (1.0 - side * slip), why, False  # fell back through a stop raised on the way
    return math.nan, 0, False


@njit(cache=True)
def _intrabar(
    acct_f: np.ndarray,
    acct_i: np.ndarray,
    pos_f: np.ndarray,
    pos_i: np.ndarray,
    ring: np.ndarray,
    tr_f: np.ndarray,
    tr_i: np.ndarray,
    prm_i: np.ndarray,
    prm_f: np.ndarray,
    p: int,
    r: int,
    t: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    d_lo: np.ndarray,
    d_hi: np.ndarray,
    dt: np.ndarray,
    do: np.ndarray,
    dh: np.ndarray,
    dl: np.ndarray,
    dc: np.ndarray,
) -> None:
    side = pos_i[p, Q_SIDE]
    if side == 0:
        return
    if d_lo.shape[0] > 0 and d_hi[r] > d_lo[r]:
        for j in range(d_lo[r], d_hi[r]):
            price, reason, maker = _resolve_bar(pos_f, prm_f, p, side, do[j], dh[j], dl[j], dc[j])
            if reason != 0:
                fee = prm_f[F_FEE_MAKER] if maker else prm_f[F_FEE_TAKER]
                _close(
                    acct_f, acct_i, pos_f, pos_i, ring, tr_f, tr_i, prm_i, prm_f, p, price, dt[j], reason, fee
                )
                return
        return
    price, reason, maker = _resolve_bar(pos_f, prm_f, p, side, o[r], h[r], lo[r], c[r])
    if reason != 0:
        fee = prm_f[F_FEE_MAKER] if maker else prm_f[F_FEE_TAKER]
        _close(acct_f, acct_i, pos_f, pos_i, ring, tr_f, tr_i, prm_i, prm_f, p, price, t[r], reason, fee)


@njit(cache=True)
def _decide(
    pos_f: np.ndarray,
    pos_i: np.ndarray,
    prm_i: np.ndarray,
    prm_f: np.ndarray,
    p: int,
    r: int,
    time: int,
    el: np.ndarray,
    xl: np.ndarray,
    es: np.ndarray,
    xs: np.ndarray,
    sd: np.ndarray,
    td: np.ndarray,
    atr: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    fxl: np.ndarray,
    fxs: np.ndarray,
    sz: np.ndarray,
) -> None:
    """Turn the signals of the closed candle ``r`` into orders for the next open."""
    side = pos_i[p, Q_SIDE]
    fast_l = fxl.shape[0] > 0 and fxl[r]
    fast_s = fxs.shape[0] > 0 and fxs[r]
    exit_l = xl[r] or fast_l
    exit_s = xs[r] or fast_s
    leave = (side > 0 and exit_l) or (side < 0 and exit_s)
    pos_i[p, Q_PEND_EXIT] = 1 if leave else 0
    # A fast exit could have left anywhere inside this candle: the next open fills it no better than
    # this candle's worst price for the position (its low for a long, its high for a short).
    if side > 0 and fast_l:
        pos_f[p, P_FAST] = lo[r]
    elif side < 0 and fast_s:
        pos_f[p, P_FAST] = h[r]
    else:
        pos_f[p, P_FAST] = math.nan
    enter = 0
    if side == 0 or leave:
        # Contradictory signals on one candle (enter and exit the same side, or both sides) do nothing.
        if el[r] and not exit_l and not es[r]:
            enter = 1
        elif es[r] and not exit_s and not el[r] and prm_i[I_FUTURES] != 0:
            enter = -1
    fraction = 1.0
    if enter != 0 and sz.shape[0] > 0:
        # The strategy's size on this candle: above 1 is the full stake; 0, below or NaN is no entry.
        fraction = sz[r]
        if not fraction > 0.0:
            enter = 0
        elif fraction > 1.0:
            fraction = 1.0
    pos_i[p, Q_PEND_ENTRY] = enter
    if enter != 0:
        pos_i[p, Q_PEND_TIME] = time
        a = atr[r] if atr.shape[0] > 0 else math.nan
        stop_d = sd[r] if sd.shape[0] > 0 else math.nan
        if math.isnan(stop_d):
            stop_d = prm_f[F_SL_ATR] * a  # NaN when either is missing
        target_d = td[r] if td.shape[0] > 0 else math.nan
        if math.isnan(target_d):
            target_d = prm_f[F_TP_ATR] * a
        pos_f[p, P_PEND_SD] = stop_d
        pos_f[p, P_PEND_TD] = target_d
        pos_f[p, P_PEND_SZ] = fraction


@njit(cache=True)
def force_close_all(
    acct_f: np.ndarray,
    acct_i: np.ndarray,
    pos_f: np.ndarray,
    pos_i: np.ndarray,
    ring: np.ndarray,
    tr_f: np.ndarray,
    tr_i: np.ndarray,
    prm_i: np.ndarray,
    prm_f: np.ndarray,
    tf_ns: np.ndarray,
    reason: int,
) -> None:
    """Close every open position at its pair's last close (a market order: taker fee, slippage),
    at that candle's close time. The caller guarantees room for ``n_pairs`` more trades."""
    slip = prm_f[F_SLIPPAGE]
    for p in range(pos_i.shape[0]):
        side = pos_i[p, Q_SIDE]
        if side != 0:
            price = pos_f[p, P_MARK] * (1.0 - side * slip)
            time = pos_i[p, Q_LAST_TIME] + tf_ns[p]
            _close(
                acct_f,
                acct_i,
                pos_f,
                pos_i,
                ring,
                tr_f,
                tr_i,
                prm_i,
                prm_f,
                p,
                price,
                time,
                reason,
                prm_f[F_FEE_TAKER],
            )
        pos_i[p, Q_PEND_ENTRY] = 0
        pos_i[p, Q_PEND_EXIT] = 0
    acct_f[A_EQUITY] = _equity(acct_f, pos_f, pos_i)


@njit(cache=True)
def run_events(
    acct_f: np.ndarray,
    acct_i: np.ndarray,
    pos_f: np.ndarray,
    pos_i: np.ndarray,
    ring: np.ndarray,
    tr_f: np.ndarray,
    tr_i: np.ndarray,
    bl: np.ndarray,
    prm_i: np.ndarray,
    prm_f: np.ndarray,
    lim: np.ndarray,
    tf_ns: np.ndarray,
    ev_pair: np.ndarray,
    ev_row: np.ndarray,
    ev_equity: np.ndarray,
    t: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    el: np.ndarray,
    xl: np.ndarray,
    es: np.ndarray,
    xs: np.ndarray,
    sd: np.ndarray,
    td: np.ndarray,
    atr: np.ndarray,
    fxl: np.ndarray,
    fxs: np.ndarray,
    sz: np.ndarray,
    d_lo: np.ndarray,
    d_hi: np.ndarray,
    dt: np.ndarray,
    do: np.ndarray,
    dh: np.ndarray,
    dl: np.ndarray,
    dc: np.ndarray,
    start: int,
    end: int,
) -> int:
    """Process events ``[start, end)``; returns the first event not processed, which is ``end``
    unless the trade or blocked-entry buffer ran out of room (grow them and call again from there).

    Event ``k`` is candle ``ev_row[k]`` (an index into ``t``, ``o``... and the signal arrays) of pair
    ``ev_pair[k]``; events must be sorted by (time, pair) with at most one candle per pair and time.
    ``sd``/``td``/``atr`` (stop and target distances, ATR), ``fxl``/``fxs`` (fast exits, filled at the
    worse of the next open and the signal candle's low / high), ``sz`` (the strategy's size: a fraction
    of the stake, clipped to 1, no entry at 0 or below or NaN) and the detail arrays may be empty.
    ``d_lo[r]:d_hi[r]`` are the detail candles (``dt``, ``do``...) inside candle ``r``.
    The equity after each time step is written to ``ev_equity`` for all of its events."""
    n_pairs = pos_i.shape[0]
    slip = prm_f[F_SLIPPAGE]
    taker = prm_f[F_FEE_TAKER]
    e = start
    while e < end:
        time = t[ev_row[e]]
        g = e + 1
        while g < end and t[ev_row[g]] == time:
            g += 1
        size = g - e
        if (
            acct_i[B_N_TRADES] + 2 * size + n_pairs > tr_f.shape[0]
            or acct_i[B_N_BLOCKED] + size > bl.shape[0]
        ):
            return e

        day = time // DAY_NS
        if acct_i[B_STARTED] == 0 or day > acct_i[B_DAY]:
            roll_day(acct_f, acct_i, prm_i, day)

        # A. fills at the open
        for k in range(e, g):
            p = ev_pair[k]
            r = ev_row[k]
            pos_i[p, Q_BARS] += 1
            if pos_i[p, Q_PEND_EXIT] != 0:
                pos_i[p, Q_PEND_EXIT] = 0
                side = pos_i[p, Q_SIDE]
                if side != 0:
                    price = o[r]
                    worst = pos_f[p, P_FAST]
                    reason = EXIT_SIGNAL
                    if not math.isnan(worst):
                        price = min(price, worst) if side > 0 else max(price, worst)
                        reason = EXIT_FAST
                    price = price * (1.0 - side * slip)
                    _close(
                        acct_f,
                        acct_i,
                        pos_f,
                        pos_i,
                        ring,
                        tr_f,
                        tr_i,
                        prm_i,
                        prm_f,
                        p,
                        price,
                        time,
                        reason,
                        taker,
                    )
            enter = pos_i[p, Q_PEND_ENTRY]
            if enter != 0:
                pos_i[p, Q_PEND_ENTRY] = 0
                if pos_i[p, Q_SIDE] == 0:
                    _open(acct_f, acct_i, pos_f, pos_i, bl, prm_i, prm_f, lim, p, enter, o[r], time)

        # B. inside the candle, then mark at the close
        for k in range(e, g):
            p = ev_pair[k]
            r = ev_row[k]
            _intrabar(
                acct_f, acct_i, pos_f, pos_i, ring, tr_f, tr_i, prm_i, prm_f,
                p, r, t, o, h, lo, c, d_lo, d_hi, dt, do, dh, dl, dc,
            )  # fmt: skip
            pos_f[p, P_MARK] = c[r]
            pos_i[p, Q_LAST_TIME] = time

        # C. at the close
        equity = _equity(acct_f, pos_f, pos_i)
        acct_f[A_EQUITY] = equity
        if acct_i[B_DAILY_BLOCKED] == 0 and check_daily_limits(
            acct_f[A_DAY_START_EQ], equity, prm_f[F_DAILY_LIMIT]
        ):
            acct_i[B_DAILY_BLOCKED] = 1
            if prm_i[I_DAILY_CLOSE] != 0:
                force_close_all(
                    acct_f, acct_i, pos_f, pos_i, ring, tr_f, tr_i, prm_i, prm_f, tf_ns, EXIT_DAILY_LIMIT
                )
                equity = acct_f[A_EQUITY]
        for k in range(e, g):
            _decide(
                pos_f, pos_i, prm_i, prm_f, ev_pair[k], ev_row[k], time,
                el, xl, es, xs, sd, td, atr, h, lo, fxl, fxs, sz,
            )  # fmt: skip
            ev_equity[k] = equity
        e = g
    return e
