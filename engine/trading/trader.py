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

    # --- views ----------------------------------------------------------------------------------

    @property
    def equity(self) -> float:
        return self.state.equity

    def trades(self) -> pd.DataFrame:
        return trades_frame(self.state)

    def blocked(self) -> pd.DataFrame:
        return blocked_frame(self.state)

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
        px = np.array([[c.open, c.high, c.low, c.close] for _, (c, _) in rows], dtype=np.float64)
        for (pair, _), (o, h, lo, c) in zip(rows, px, strict=True):
            if not (np.isfinite([o, h, lo, c]).all() and min(o, h, lo, c) > 0 and h >= lo):
                raise ValueError(
                    f"{pair}: invalid candle at {_ts(time)}: open={o} high={h} low={lo} close={c}"
                )
        sig = [s for _, (_, s) in rows]
        market = MarketArrays(
            t=np.full(k, time, dtype=np.int64),
            o=np.ascontiguousarray(px[:, 0]),
            h=np.ascontiguousarray(px[:, 1]),
            lo=np.ascontiguousarray(px[:, 2]),
            c=np.ascontiguousarray(px[:, 3]),
            el=np.array([s.entry_long for s in sig], dtype=np.bool_),
            xl=np.array([s.exit_long for s in sig], dtype=np.bool_),
            es=np.array([s.entry_short for s in sig], dtype=np.bool_),
            xs=np.array([s.exit_short for s in sig], dtype=np.bool_),
            sd=np.array([s.stop_distance for s in sig], dtype=np.float64),
            td=np.array([s.take_profit_distance for s in sig], dtype=np.float64),
            atr=np.array([s.atr for s in sig], dtype=np.float64),
        )
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
        events: list[TraderEvent] = [f for f in closed if f.reason == "exit_signal"]
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
        events.extend(f for f in closed if f.reason != "exit_signal")
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
