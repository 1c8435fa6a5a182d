"""The live side of the trading core: one call per closed candle, the backtest's compiled kernel.

    trader = Trader(["BTC/USDT", "ETH/USDT"], params, timeframe="5m")
    events = trader.on_candle("BTC/USDT", Candle(time, o, h, l, c), Signals(entry_long=True))

Each call returns what happened: fills at this candle's open (orders decided on the previous candle)
and inside it (stops, targets), entries the risk manager refused, and the orders decided on this
candle's close for the next open. The runtime sends those orders to the exchange; on the paper
exchange the next call's fills are exactly what the backtest would have produced.

When several pairs' candles close at the same moment, pass them together to :meth:`on_candles` so
that they share the capital pool in the same order as in a backtest (by pair, in ``pairs`` order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from dsl.timeframes import timeframe_seconds
from engine.trading import layout as L
from engine.trading.driver import MarketArrays, close_all_positions, run
from engine.trading.params import TradingParams
from engine.trading.state import TradingState, blocked_frame, trades_frame

__all__ = ["Blocked", "Candle", "Fill", "Order", "Signals", "Trader", "TraderEvent"]

TimeLike = pd.Timestamp | datetime | np.datetime64 | int


def _ns(time: TimeLike) -> int:
    if isinstance(time, int | np.integer):
        return int(time)
    ts = pd.Timestamp(time)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.as_unit("ns").value)


def _ts(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, unit="ns", tz="UTC")


@dataclass(frozen=True, slots=True)
class Candle:
    """A closed candle; ``time`` is its open time (UTC; an int is nanoseconds since the epoch)."""

    time: TimeLike
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True, slots=True)
class Signals:
    """The strategy's outputs on a closed candle. Distances are in price units; NaN = not given."""

    entry_long: bool = False
    exit_long: bool = False
    entry_short: bool = False
    exit_short: bool = False
    stop_distance: float = math.nan
    take_profit_distance: float = math.nan
    atr: float = math.nan
    # (alert name, score) of the strategy's alerts whose condition holds: notified, never traded on.
    alerts: tuple[tuple[str, float], ...] = ()
    # Exits the strategy marks fast: filled at the next open, no better than this candle's low (long)
    # or high (short), the worst price an exit inside the candle could have had.
    fast_exit_long: bool = False
    fast_exit_short: bool = False
    # The strategy's ``size:`` on this candle, a fraction of the stake the risk rules give to an entry
    # decided on it: above 1 counts as 1; 0, below or NaN takes no entry. 1.0 without a ``size:``.
    size: float = 1.0


@dataclass(frozen=True, slots=True)
class Fill:
    pair: str
    time: pd.Timestamp
    side: Literal["long", "short"]
    action: Literal["open", "close"]
    price: float
    amount: float
    fee: float
    reason: str  # "entry" or an exit reason (exit_signal, stop_loss, ...)


@dataclass(frozen=True, slots=True)
class Order:
    """An order decided on the close of the candle at ``time``, to execute at the next open."""

    pair: str
    time: pd.Timestamp
    action: Literal["open_long", "open_short", "close"]


@dataclass(frozen=True, slots=True)
class Blocked:
    pair: str
    time: pd.Timestamp
    side: Literal["long", "short"]
    reason: str


TraderEvent = Fill | Order | Blocked


class Trader:
    """Holds one bot's trading state and advances it one closed candle (or one moment) at a time."""

    def __init__(
        self,
        pairs: Sequence[str],
        params: TradingParams,
        timeframe: str | Mapping[str, str],
    ) -> None:
        self.params = params
        self.state = TradingState.new(tuple(pairs), params)
        self._index = {pair: k for k, pair in enumerate(self.state.pairs)}
        frames = {p: timeframe for p in self.state.pairs} if isinstance(timeframe, str) else timeframe
        missing = [p for p in self.state.pairs if p not in frames]
        if missing:
            raise ValueError(f"no timeframe given for {', '.join(missing)}")
        self.tf_ns = np.array(
            [timeframe_seconds(frames[p]) * 1_000_000_000 for p in self.state.pairs], dtype=np.int64
        )
        self._last_time = L.NO_BAR

    # --- inputs ---------------------------------------------------------------------------------

    def on_candle(
        self, pair: str, candle: Candle, signals: Signals, detail: Sequence[Candle] | None = None
    ) -> list[TraderEvent]:
        """Advance ``pair`` by one closed candle. ``detail`` are lower-timeframe candles inside it,
        in time order, to resolve stops and targets on (the bar magnifier)."""
        return self.on_candles({pair: (candle, signals)}, detail={pair: detail} if detail else None)

    def on_candles(
        self,
        batch: Mapping[str, tuple[Candle, Signals]],
        detail: Mapping[str, Sequence[Candle] | None] | None = None,
    ) -> list[TraderEvent]:
        """Advance several pairs whose candles opened at the same time."""
        if not batch:
            return []
        rows = sorted(batch.items(), key=lambda item: self._pair_index(item[0]))
        times = {_ns(candle.time) for _, (candle, _) in rows}
        if len(times) != 1:
            raise ValueError("on_candles: every candle in one call must have the same open time")
        time = times.pop()
        if time < self._last_time:
            raise ValueError(
                f"on_candles: {_ts(time)} is before the last candle processed ({_ts(self._last_time)})"
            )
        for pair, _ in rows:
            if time <= self.state.pos_i[self._index[pair], L.Q_LAST_TIME]:
                raise ValueError(f"{pair}: candle at {_ts(time)} was already processed")
        market = self._market(rows, time, detail or {})
        k = len(rows)
        ev_pair = np.array([self._index[p] for p, _ in rows], dtype=np.int64)
        st = self.state
        st.reserve(k)
        n_tr, n_bl = st.n_trades, st.n_blocked
        run(st, self.tf_ns, market, ev_pair, np.arange(k, dtype=np.int64), np.empty(k), 0, k)
        self._last_time = time
        return self._events(time, ev_pair, n_tr, n_bl)

    def close_all(self, reason: Literal["end_of_data", "daily_limit"] = "end_of_data") -> list[TraderEvent]:
        """Close every open position at its last close (e.g. when a bot stops)."""
        code = {"end_of_data": L.EXIT_END_OF_DATA, "daily_limit": L.EXIT_DAILY_LIMIT}[reason]
        n_tr = self.state.n_trades
        close_all_positions(self.state, self.tf_ns, code)
        return list(self._closed_fills(n_tr))

    # --- execution outside the kernel (exchange modes) -----------------------------------------

    def entry_preview(self, pair: str, price: float, time: TimeLike) -> tuple[float, str | None]:
        """The amount the kernel's sizing and risk rules would open for the pending entry of ``pair``
        if it filled at ``price`` now: ``(amount, None)``, or ``(0.0, reason)`` when the risk manager
        would refuse it. The state is not changed (the kernel runs on copies of its arrays)."""
        from engine.trading.kernel import _open

        p = self._pair_index(pair)
        st = self.state
        side = int(st.pos_i[p, L.Q_PEND_ENTRY])
        if side == 0 or st.pos_i[p, L.Q_SIDE] != 0:
            return 0.0, "no_pending_entry"
        acct_f, acct_i = st.acct_f.copy(), st.acct_i.copy()
        pos_f, pos_i = st.pos_f.copy(), st.pos_i.copy()
        bl = np.zeros((1, L.N_BLOCKED), dtype=np.int64)
        acct_i[L.B_N_BLOCKED] = 0
        # The fill belongs to the next candle: the kernel counts its bar before opening.
        pos_i[p, L.Q_BARS] += 1
        _open(acct_f, acct_i, pos_f, pos_i, bl, st.prm_i, st.prm_f, st.lim, p, side, float(price), _ns(time))
        if acct_i[L.B_N_BLOCKED]:
            return 0.0, L.BLOCK_REASONS[int(bl[0, L.K_REASON])]
        return float(pos_f[p, L.P_AMOUNT]), None

    def apply_external_fill(
        self,
        pair: str,
        *,
        price: float,
        amount: float,
        fee: float,
        time: TimeLike,
        reason: str = "exit_signal",
        side: Literal["long", "short"] | None = None,
    ) -> Fill:
        """Execute the pending order of ``pair`` (an entry, or an exit decided on a close) at a fill that
        happened elsewhere (an exchange): average ``price``, filled ``amount`` and ``fee`` in the quote
        currency, at ``time`` (the next candle's open). An exit that fills less than the position closes
        the filled part as a trade and keeps the rest open. ``side`` opens a position on a flat pair
        whose pending entry was already cleared (a fill found later, by a look-up or reconciliation).
        Returns the fill as the kernel records it."""
        from engine.trading.kernel import _close, _equity
        from engine.trading.risk import calculate_stop_loss, calculate_take_profit, round_to_step

        if not (price > 0 and amount > 0 and fee >= 0):
            raise ValueError(f"{pair}: invalid fill {amount} @ {price} (fee {fee})")
        p = self._pair_index(pair)
        st = self.state
        t = _ns(time)
        if st.pos_i[p, L.Q_SIDE] != 0:
            held = float(st.pos_f[p, L.P_AMOUNT])
            code = next((k for k, v in L.EXIT_REASONS.items() if v == reason), L.EXIT_SIGNAL)
            st.reserve(1)
            if amount < held * (1 - 1e-9):
                # Close the filled part as its own trade: a copy of the position of that size.
                rest_fee_in = float(st.pos_f[p, L.P_FEE_IN]) * (1 - amount / held)
                st.pos_f[p, L.P_FEE_IN] -= rest_fee_in
                st.pos_f[p, L.P_AMOUNT] = amount
                snapshot_f, snapshot_i = st.pos_f[p].copy(), st.pos_i[p].copy()
            else:
                snapshot_f = snapshot_i = None
            _close(
                st.acct_f, st.acct_i, st.pos_f, st.pos_i, st.ring, st.tr_f, st.tr_i, st.prm_i, st.prm_f,
                p, float(price), t, code, float(fee) / (amount * float(price)),
            )  # fmt: skip
            if snapshot_f is not None:
                # The unfilled rest stays open (its margin never came back to the cash).
                st.pos_f[p], st.pos_i[p] = snapshot_f, snapshot_i
                st.pos_f[p, L.P_AMOUNT] = held - amount
                st.pos_f[p, L.P_FEE_IN] = rest_fee_in
                st.acct_i[L.B_N_OPEN] += 1
            st.pos_i[p, L.Q_PEND_EXIT] = 0
            st.acct_f[L.A_EQUITY] = _equity(st.acct_f, st.pos_f, st.pos_i)
            return self._closed_fills(st.n_trades - 1)[0]
        enter = int(st.pos_i[p, L.Q_PEND_ENTRY]) if side is None else (1 if side == "long" else -1)
        if enter == 0:
            raise ValueError(f"{pair}: no pending order to apply a fill to")
        tick = float(st.lim[p, L.L_PRICE_TICK])
        stop = round_to_step(
            calculate_stop_loss(float(price), enter, st.pos_f[p, L.P_PEND_SD], st.prm_f[L.F_SL_PCT]), tick
        )
        target = round_to_step(
            calculate_take_profit(float(price), enter, st.pos_f[p, L.P_PEND_TD], st.prm_f[L.F_TP_PCT]), tick
        )
        st.acct_f[L.A_CASH] -= amount * price + fee
        st.acct_f[L.A_FEES] += fee
        st.pos_i[p, L.Q_SIDE] = enter
        st.pos_i[p, L.Q_ENTRY_TIME] = t
        st.pos_i[p, L.Q_ENTRY_BAR] = st.pos_i[p, L.Q_BARS] + 1  # the bar of the candle opening at ``t``
        st.pos_i[p, L.Q_PEND_ENTRY] = 0
        st.pos_f[p, L.P_AMOUNT] = amount
        st.pos_f[p, L.P_ENTRY] = price
        st.pos_f[p, L.P_STOP] = stop
        st.pos_f[p, L.P_TP] = target
        st.pos_f[p, L.P_BEST] = price
        st.pos_f[p, L.P_TRAIL] = np.nan
        st.pos_f[p, L.P_LOCK] = np.nan
        st.pos_f[p, L.P_FEE_IN] = fee
        st.pos_f[p, L.P_MARK] = price
        st.acct_i[L.B_N_OPEN] += 1
        st.acct_f[L.A_EQUITY] = _equity(st.acct_f, st.pos_f, st.pos_i)
        return Fill(
            pair, _ts(t), "long" if enter > 0 else "short", "open", float(price), amount, fee, "entry"
        )

    def reprice_exit(self, trade: int, *, price: float, fee: float) -> Fill:
        """Move closed trade number ``trade`` (an exit the kernel filled inside a candle, at its stop or
        target) to the price and fee it really got on the exchange; cash, realised profit, fees and the
        trade row follow. (Protections already counted the trade with its simulated result.)"""
        st = self.state
        if not 0 <= trade < st.n_trades:
            raise ValueError(f"no closed trade number {trade}")
        f, i = st.tr_f[trade], st.tr_i[trade]
        side = int(i[L.U_SIDE])
        amount = float(f[L.T_AMOUNT])
        moved = side * amount * (price - float(f[L.T_CLOSE_PRICE])) - (fee - float(f[L.T_FEE_OUT]))
        st.acct_f[L.A_CASH] += moved
        st.acct_f[L.A_REALIZED] += moved
        st.acct_f[L.A_FEES] += fee - float(f[L.T_FEE_OUT])
        st.acct_f[L.A_EQUITY] += moved
        f[L.T_CLOSE_PRICE] = price
        f[L.T_FEE_OUT] = fee
        f[L.T_PROFIT_ABS] += moved
        f[L.T_PROFIT_RATIO] = f[L.T_PROFIT_ABS] / (amount * float(f[L.T_OPEN_PRICE]))
        f[L.T_EQUITY_AFTER] += moved
        return self._closed_fills(trade)[0]

    def reopen(self, trade: int, amount: float) -> None:
        """Give ``amount`` (base units) of closed trade number ``trade`` back to its pair as the open
        position: the exchange refused its exit (all of it) or filled only part of it. The trade keeps
        the rest (removed when nothing of it was sold; later trades move down one number); the cash
        gets back the simulated proceeds of the part not sold. The position takes the trade's side,
        entry price and time, and the stop, target, trailing and profit-lock levels it had when it
        closed (left in the pair's row by the close; NaN when a later position overwrote them). The
        protections keep counting the trade as they did. Reprice the sold part after this."""
        from engine.trading.kernel import _equity

        st = self.state
        if not 0 <= trade < st.n_trades:
            raise ValueError(f"no closed trade number {trade}")
        f, i = st.tr_f[trade], st.tr_i[trade]
        p = int(i[L.U_PAIR])
        if st.pos_i[p, L.Q_SIDE] != 0:
            raise ValueError(f"{st.pairs[p]}: a position is open; trade {trade} cannot be reopened")
        full = float(f[L.T_AMOUNT])
        if not 0 < amount <= full * (1 + 1e-9):
            raise ValueError(f"{st.pairs[p]}: cannot reopen {amount} of a trade of {full}")
        amount = min(amount, full)
        share = amount / full
        side = int(i[L.U_SIDE])
        entry, close = float(f[L.T_OPEN_PRICE]), float(f[L.T_CLOSE_PRICE])
        fee_in, fee_out = float(f[L.T_FEE_IN]), float(f[L.T_FEE_OUT])
        # Undo the close of the part given back: its margin, gross result and exit fee.
        st.acct_f[L.A_CASH] -= amount * entry + side * amount * (close - entry) - share * fee_out
        st.acct_f[L.A_REALIZED] -= share * float(f[L.T_PROFIT_ABS])
        st.acct_f[L.A_FEES] -= share * fee_out  # the entry fee of the part stays paid (with the position)
        same = int(st.pos_i[p, L.Q_ENTRY_TIME]) == int(i[L.U_OPEN_TIME])
        if not same:
            for col in (L.P_STOP, L.P_TP, L.P_TRAIL, L.P_LOCK):
                st.pos_f[p, col] = np.nan
            st.pos_f[p, L.P_BEST] = entry
            st.pos_i[p, L.Q_ENTRY_TIME] = int(i[L.U_OPEN_TIME])
        st.pos_i[p, L.Q_SIDE] = side
        st.pos_f[p, L.P_AMOUNT] = amount
        st.pos_f[p, L.P_ENTRY] = entry
        st.pos_f[p, L.P_FEE_IN] = share * fee_in
        if not st.pos_f[p, L.P_MARK] > 0:
            st.pos_f[p, L.P_MARK] = close
        st.acct_i[L.B_N_OPEN] += 1
        if amount >= full * (1 - 1e-12):
            n = st.n_trades
            st.tr_f[trade : n - 1] = st.tr_f[trade + 1 : n].copy()
            st.tr_i[trade : n - 1] = st.tr_i[trade + 1 : n].copy()
            st.tr_f[n - 1] = 0.0
            st.tr_i[n - 1] = 0
            st.acct_i[L.B_N_TRADES] = n - 1
        else:
            keep = 1.0 - share
            f[L.T_AMOUNT] = full - amount
            f[L.T_FEE_IN] = fee_in * keep
            f[L.T_FEE_OUT] = fee_out * keep
            f[L.T_PROFIT_ABS] *= keep
        st.acct_f[L.A_EQUITY] = _equity(st.acct_f, st.pos_f, st.pos_i)

    def write_off(self, pair: str, *, time: TimeLike, reason: str = "exit_signal") -> Fill | None:
        """Close ``pair``'s position as a trade with no proceeds: an amount the exchange will never take
        (below its minimum amount or order value, "dust"). A long's coins stay on the exchange account
        and nothing is credited to the cash, which so stays equal to the account's; a short is settled
        at its last close (its margin comes back). None when flat."""
        from engine.trading.kernel import _close, _equity

        p = self._pair_index(pair)
        st = self.state
        if st.pos_i[p, L.Q_SIDE] == 0:
            return None
        code = next((k for k, v in L.EXIT_REASONS.items() if v == reason), L.EXIT_SIGNAL)
        price = 0.0 if st.pos_i[p, L.Q_SIDE] > 0 else float(st.pos_f[p, L.P_MARK])
        st.reserve(1)
        _close(
            st.acct_f, st.acct_i, st.pos_f, st.pos_i, st.ring, st.tr_f, st.tr_i, st.prm_i, st.prm_f,
            p, price, _ns(time), code, 0.0,
        )  # fmt: skip
        st.pos_i[p, L.Q_PEND_EXIT] = 0
        st.acct_f[L.A_EQUITY] = _equity(st.acct_f, st.pos_f, st.pos_i)
        return self._closed_fills(st.n_trades - 1)[0]

    def cancel_pending(self, pair: str, *, entry: bool = True, exit: bool = True) -> bool:
        """Forget the entry and/or exit decided for ``pair``'s next open (executed elsewhere, or refused
        by the exchange); True when there was one."""
        p = self._pair_index(pair)
        pos_i = self.state.pos_i
        had = bool((entry and pos_i[p, L.Q_PEND_ENTRY]) or (exit and pos_i[p, L.Q_PEND_EXIT]))
        if entry:
            pos_i[p, L.Q_PEND_ENTRY] = 0
        if exit:
            pos_i[p, L.Q_PEND_EXIT] = 0
        return had

    def request_exit(self, pair: str) -> bool:
        """Close ``pair``'s position at the next open, as an exit signal on the last close would; False
        when nothing is held."""
        p = self._pair_index(pair)
        if self.state.pos_i[p, L.Q_SIDE] == 0:
            return False
        self.state.pos_i[p, L.Q_PEND_EXIT] = 1
        return True

    def restop(self, pair: str, signals: Signals) -> tuple[float, float] | None:
        """Recalculate the stop and take-profit of ``pair``'s open position from its entry price under
        the current parameters and this candle's strategy outputs (a hot reload), with the rules of an
        entry: the strategy's distance, else the ATR multiple, else the percentage, else none. Trailing
        stops keep their level and follow the new distance from the next candle. Returns the new
        (stop, take_profit), NaN for none; None when nothing is held."""
        from engine.trading.risk import calculate_stop_loss, calculate_take_profit, round_to_step

        p = self._pair_index(pair)
        st = self.state
        side = int(st.pos_i[p, L.Q_SIDE])
        if side == 0:
            return None
        entry = float(st.pos_f[p, L.P_ENTRY])
        stop_d, target_d = signals.stop_distance, signals.take_profit_distance
        if math.isnan(stop_d):
            stop_d = st.prm_f[L.F_SL_ATR] * signals.atr
        if math.isnan(target_d):
            target_d = st.prm_f[L.F_TP_ATR] * signals.atr
        tick = float(st.lim[p, L.L_PRICE_TICK])
        stop = round_to_step(calculate_stop_loss(entry, side, stop_d, st.prm_f[L.F_SL_PCT]), tick)
        target = round_to_step(calculate_take_profit(entry, side, target_d, st.prm_f[L.F_TP_PCT]), tick)
        st.pos_f[p, L.P_STOP] = stop
        st.pos_f[p, L.P_TP] = target
        return float(stop), float(target)

    # --- views ----------------------------------------------------------------------------------

    @property
    def equity(self) -> float:
        return self.state.equity

    def trades(self) -> pd.DataFrame:
        return trades_frame(self.state)

    def blocked(self) -> pd.DataFrame:
        return blocked_frame(self.state)

    def held_side(self, pair: str) -> int:
        """1 long, -1 short, 0 flat: :meth:`position`'s side without building its dict (read by every
        bot for every pair at every close)."""
        return int(self.state.pos_i[self._index[pair], L.Q_SIDE])

    def position(self, pair: str) -> dict[str, float | str] | None:
        p = self._pair_index(pair)
        side = int(self.state.pos_i[p, L.Q_SIDE])
        if side == 0:
            return None
        f = self.state.pos_f[p]
        return {
            "side": "long" if side > 0 else "short",
            "amount": float(f[L.P_AMOUNT]),
            "entry_price": float(f[L.P_ENTRY]),
            "stop": float(f[L.P_STOP]),
            "take_profit": float(f[L.P_TP]),
            "trailing_stop": float(f[L.P_TRAIL]),
        }

    # --- internals ------------------------------------------------------------------------------

    def _pair_index(self, pair: str) -> int:
        try:
            return self._index[pair]
        except KeyError:
            raise ValueError(
                f"unknown pair {pair!r} (this trader has {', '.join(self.state.pairs)})"
            ) from None

    def _market(
        self,
        rows: list[tuple[str, tuple[Candle, Signals]]],
        time: int,
        detail: Mapping[str, Sequence[Candle] | None],
    ) -> MarketArrays:
        k = len(rows)
        numbers, flags = [], []
        for pair, (c, s) in rows:
            o, h, lo, cl = c.open, c.high, c.low, c.close
            finite = math.isfinite(o) and math.isfinite(h) and math.isfinite(lo) and math.isfinite(cl)
            if not (finite and min(o, h, lo, cl) > 0 and h >= lo):
                raise ValueError(
                    f"{pair}: invalid candle at {_ts(time)}: open={o} high={h} low={lo} close={cl}"
                )
            numbers.append((o, h, lo, cl, s.stop_distance, s.take_profit_distance, s.atr, s.size))
            flags.append(
                (s.entry_long, s.exit_long, s.entry_short, s.exit_short, s.fast_exit_long, s.fast_exit_short)
            )
        # One array per kind, rows made contiguous by the copy of the transpose: a live bot builds
        # this on every candle, where fourteen small np.array calls cost more than the kernel itself.
        f = np.array(numbers, dtype=np.float64).T.copy()
        b = np.array(flags, dtype=np.bool_).T.copy()
        market = MarketArrays(
            t=np.full(k, time, dtype=np.int64),
            o=f[0],
            h=f[1],
            lo=f[2],
            c=f[3],
            el=b[0],
            xl=b[1],
            es=b[2],
            xs=b[3],
            sd=f[4],
            td=f[5],
            atr=f[6],
            sz=f[7],
        )
        if b[4].any() or b[5].any():
            market.fxl, market.fxs = b[4], b[5]
        subs = [list(detail.get(pair) or ()) for pair, _ in rows]
        if any(subs):
            bounds = np.cumsum([0] + [len(s) for s in subs])
            flat = [d for s in subs for d in s]
            market.d_lo = bounds[:-1].astype(np.int64)
            market.d_hi = bounds[1:].astype(np.int64)
            market.dt = np.array([_ns(d.time) for d in flat], dtype=np.int64)
            dpx = np.array([[d.open, d.high, d.low, d.close] for d in flat], dtype=np.float64)
            market.do, market.dh, market.dl, market.dc = (np.ascontiguousarray(dpx[:, j]) for j in range(4))
        return market

    def _closed_fills(self, start: int) -> list[Fill]:
        st = self.state
        out = []
        for k in range(start, st.n_trades):
            f, i = st.tr_f[k], st.tr_i[k]
            out.append(
                Fill(
                    pair=st.pairs[i[L.U_PAIR]],
                    time=_ts(int(i[L.U_CLOSE_TIME])),
                    side="long" if i[L.U_SIDE] > 0 else "short",
                    action="close",
                    price=float(f[L.T_CLOSE_PRICE]),
                    amount=float(f[L.T_AMOUNT]),
                    fee=float(f[L.T_FEE_OUT]),
                    reason=L.EXIT_REASONS[int(i[L.U_REASON])],
                )
            )
        return out

    def _events(self, time: int, ev_pair: np.ndarray, n_tr: int, n_bl: int) -> list[TraderEvent]:
        st = self.state
        closed = self._closed_fills(n_tr)
        # Fills in the order they happened: exits on signal at the open, entries at the open, then
        # exits inside the candle (a position opened at this open may already be stopped out).
        events: list[TraderEvent] = [f for f in closed if f.reason in L.DECIDED_EXITS]
        for k in range(n_tr, st.n_trades):
            if st.tr_i[k, L.U_OPEN_TIME] == time:
                events.append(
                    self._entry_fill(int(st.tr_i[k, L.U_PAIR]), time, st.tr_f[k], st.tr_i[k, L.U_SIDE])
                )
        for p in ev_pair:
            if st.pos_i[p, L.Q_SIDE] != 0 and st.pos_i[p, L.Q_ENTRY_TIME] == time:
                f = st.pos_f[p]
                events.append(
                    Fill(
                        pair=st.pairs[p],
                        time=_ts(time),
                        side="long" if st.pos_i[p, L.Q_SIDE] > 0 else "short",
                        action="open",
                        price=float(f[L.P_ENTRY]),
                        amount=float(f[L.P_AMOUNT]),
                        fee=float(f[L.P_FEE_IN]),
                        reason="entry",
                    )
                )
        events.extend(f for f in closed if f.reason not in L.DECIDED_EXITS)
        for k in range(n_bl, st.n_blocked):
            b = st.bl[k]
            events.append(
                Blocked(
                    pair=st.pairs[b[L.K_PAIR]],
                    time=_ts(int(b[L.K_TIME])),
                    side="long" if b[L.K_SIDE] > 0 else "short",
                    reason=L.BLOCK_REASONS[int(b[L.K_REASON])],
                )
            )
        for p in ev_pair:
            if st.pos_i[p, L.Q_PEND_EXIT]:
                events.append(Order(st.pairs[p], _ts(time), "close"))
            enter = st.pos_i[p, L.Q_PEND_ENTRY]
            if enter:
                events.append(Order(st.pairs[p], _ts(time), "open_long" if enter > 0 else "open_short"))
        return events

    def _entry_fill(self, p: int, time: int, f: np.ndarray, side: int) -> Fill:
        return Fill(
            pair=self.state.pairs[p],
            time=_ts(time),
            side="long" if side > 0 else "short",
            action="open",
            price=float(f[L.T_OPEN_PRICE]),
            amount=float(f[L.T_AMOUNT]),
            fee=float(f[L.T_FEE_IN]),
            reason="entry",
        )
