"""The trading state: a handful of numpy arrays the kernel reads and writes in place.

The same object serves a backtest run and a live :class:`~engine.trading.trader.Trader`; the
column meaning of every array is in ``layout``. Closed trades and blocked entries are appended to
buffers that grow on demand (the kernel stops when one is full and is resumed after growing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.trading import layout as L
from engine.trading.params import TradingParams

__all__ = ["TradingState", "blocked_frame", "trades_frame"]


@dataclass(slots=True)
class TradingState:
    pairs: tuple[str, ...]
    prm_i: np.ndarray
    prm_f: np.ndarray
    lim: np.ndarray
    acct_f: np.ndarray
    acct_i: np.ndarray
    pos_f: np.ndarray
    pos_i: np.ndarray
    ring: np.ndarray
    tr_f: np.ndarray
    tr_i: np.ndarray
    bl: np.ndarray

    def __post_init__(self) -> None:
        # A checkpoint saved before a position column was added: the new columns start empty (NaN).
        missing = L.N_POS_F - self.pos_f.shape[1]
        if missing > 0:
            pad = np.full((self.pos_f.shape[0], missing), np.nan)
            self.pos_f = np.ascontiguousarray(np.hstack([self.pos_f, pad]))

    @classmethod
    def new(
        cls,
        pairs: tuple[str, ...] | list[str],
        params: TradingParams,
        *,
        trade_capacity: int = 1024,
        blocked_capacity: int = 1024,
    ) -> TradingState:
        pairs = tuple(pairs)
        if len(set(pairs)) != len(pairs):
            raise ValueError("pair names must be unique")
        n = len(pairs)
        prm_i, prm_f = params.pack()
        acct_f = np.zeros(L.N_ACCT_F, dtype=np.float64)
        acct_f[L.A_CASH] = params.initial_capital
        acct_f[L.A_EQUITY] = params.initial_capital
        acct_f[L.A_DAY_START_EQ] = params.initial_capital
        pos_f = np.zeros((n, L.N_POS_F), dtype=np.float64)
        pos_f[:, [L.P_STOP, L.P_TP, L.P_TRAIL, L.P_LOCK, L.P_PEND_SD, L.P_PEND_TD, L.P_FAST, L.P_PEND_SZ]] = (
            np.nan
        )
        pos_i = np.zeros((n, L.N_POS_I), dtype=np.int64)
        pos_i[:, L.Q_LAST_EXIT_BAR] = L.NO_BAR
        pos_i[:, L.Q_PAUSE_UNTIL] = L.NO_BAR
        pos_i[:, L.Q_LAST_TIME] = L.NO_BAR
        acct_i = np.zeros(L.N_ACCT_I, dtype=np.int64)
        acct_i[L.B_PAUSE_UNTIL] = L.NO_BAR
        ring_width = 1 + max(1, int(prm_i[L.I_SLG_LIMIT]))
        return cls(
            pairs=pairs,
            prm_i=prm_i,
            prm_f=prm_f,
            lim=params.pack_limits(pairs),
            acct_f=acct_f,
            acct_i=acct_i,
            pos_f=pos_f,
            pos_i=pos_i,
            ring=np.zeros((n + 1, ring_width), dtype=np.int64),
            tr_f=np.zeros((max(trade_capacity, 2 * n + 2), L.N_TRADE_F), dtype=np.float64),
            tr_i=np.zeros((max(trade_capacity, 2 * n + 2), L.N_TRADE_I), dtype=np.int64),
            bl=np.zeros((max(blocked_capacity, n + 1), L.N_BLOCKED), dtype=np.int64),
        )

    @property
    def n_trades(self) -> int:
        return int(self.acct_i[L.B_N_TRADES])

    @property
    def n_blocked(self) -> int:
        return int(self.acct_i[L.B_N_BLOCKED])

    @property
    def cash(self) -> float:
        return float(self.acct_f[L.A_CASH])

    @property
    def equity(self) -> float:
        """Equity at the last processed close (cash plus open positions marked to market)."""
        return float(self.acct_f[L.A_EQUITY])

    def reserve(self, events: int) -> None:
        """Make room for the trades and blocked entries that ``events`` more candles can produce."""
        n = len(self.pairs)
        need_tr = self.n_trades + 2 * events + n
        if need_tr > self.tr_f.shape[0]:
            size = max(need_tr, 2 * self.tr_f.shape[0])
            self.tr_f = _grown(self.tr_f, size)
            self.tr_i = _grown(self.tr_i, size)
        need_bl = self.n_blocked + events
        if need_bl > self.bl.shape[0]:
            self.bl = _grown(self.bl, max(need_bl, 2 * self.bl.shape[0]))

    def grow(self) -> None:
        """Double both buffers (the kernel ran out of room somewhere)."""
        self.tr_f = _grown(self.tr_f, 2 * self.tr_f.shape[0])
        self.tr_i = _grown(self.tr_i, 2 * self.tr_i.shape[0])
        self.bl = _grown(self.bl, 2 * self.bl.shape[0])


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, array.shape[1]), dtype=array.dtype)
    out[: array.shape[0]] = array
    return out


def _times(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")


TRADE_COLUMNS = (
    "pair",
    "side",
    "open_time",
    "close_time",
    "open_price",
    "close_price",
    "amount",
    "profit_ratio",
    "profit_abs",
    "fees",
    "exit_reason",
)


def trades_frame(state: TradingState, start: int = 0) -> pd.DataFrame:
    """Closed trades ``start..`` in closing order, one row each (columns ``TRADE_COLUMNS``)."""
    n = state.n_trades
    tf = state.tr_f[start:n]
    ti = state.tr_i[start:n]
    pairs = np.array(state.pairs, dtype=object)
    reasons = np.array(
        [L.EXIT_REASONS.get(int(x), "?") for x in range(max(L.EXIT_REASONS) + 1)], dtype=object
    )
    return pd.DataFrame(
        {
            "pair": pairs[ti[:, L.U_PAIR]] if len(ti) else np.array([], dtype=object),
            "side": np.where(ti[:, L.U_SIDE] > 0, "long", "short").astype(object),
            "open_time": _times(ti[:, L.U_OPEN_TIME]),
            "close_time": _times(ti[:, L.U_CLOSE_TIME]),
            "open_price": tf[:, L.T_OPEN_PRICE],
            "close_price": tf[:, L.T_CLOSE_PRICE],
            "amount": tf[:, L.T_AMOUNT],
            "profit_ratio": tf[:, L.T_PROFIT_RATIO],
            "profit_abs": tf[:, L.T_PROFIT_ABS],
            "fees": tf[:, L.T_FEE_IN] + tf[:, L.T_FEE_OUT],
            "exit_reason": reasons[ti[:, L.U_REASON]] if len(ti) else np.array([], dtype=object),
        },
        columns=list(TRADE_COLUMNS),
    )


def blocked_frame(state: TradingState, start: int = 0) -> pd.DataFrame:
    """Entries the risk manager refused, in order: the fill time, pair, side and reason."""
    b = state.bl[start : state.n_blocked]
    pairs = np.array(state.pairs, dtype=object)
    reasons = np.array([L.BLOCK_REASONS.get(x, "?") for x in range(max(L.BLOCK_REASONS) + 1)], dtype=object)
    return pd.DataFrame(
        {
            "time": _times(b[:, L.K_TIME]),
            "pair": pairs[b[:, L.K_PAIR]] if len(b) else np.array([], dtype=object),
            "side": np.where(b[:, L.K_SIDE] > 0, "long", "short").astype(object),
            "reason": reasons[b[:, L.K_REASON]] if len(b) else np.array([], dtype=object),
        }
    )
