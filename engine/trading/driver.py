"""Calls the compiled kernel with a :class:`TradingState` and a block of market data.

This is the single door to :func:`~engine.trading.kernel.run_events` for both the backtest runner
and the live :class:`~engine.trading.trader.Trader`; it only unpacks arrays and grows the state's
buffers when the kernel asks for room.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.trading.kernel import force_close_all, run_events
from engine.trading.state import TradingState

__all__ = ["EMPTY_F", "EMPTY_I", "MarketArrays", "close_all_positions", "run"]

EMPTY_F = np.empty(0, dtype=np.float64)
EMPTY_I = np.empty(0, dtype=np.int64)
EMPTY_B = np.empty(0, dtype=np.bool_)


@dataclass(slots=True)
class MarketArrays:
    """Candles and signals of one or more pairs, row-aligned; the kernel addresses them by row.

    ``t`` (open time, int64 ns), ``o/h/l/c`` (float64) and the four boolean signal arrays have one
    value per candle. ``sd``/``td``/``atr`` are float64 per candle or empty; ``d_lo/d_hi`` (int64
    per candle) delimit each candle's detail candles in ``dt/do/dh/dl/dc``, or are all empty."""

    t: np.ndarray
    o: np.ndarray
    h: np.ndarray
    lo: np.ndarray
    c: np.ndarray
    el: np.ndarray
    xl: np.ndarray
    es: np.ndarray
    xs: np.ndarray
    sd: np.ndarray = field(default_factory=lambda: EMPTY_F)
    td: np.ndarray = field(default_factory=lambda: EMPTY_F)
    atr: np.ndarray = field(default_factory=lambda: EMPTY_F)
    fxl: np.ndarray = field(default_factory=lambda: EMPTY_B)  # fast exits (bool per candle) or empty
    fxs: np.ndarray = field(default_factory=lambda: EMPTY_B)
    sz: np.ndarray = field(default_factory=lambda: EMPTY_F)  # the strategy's size (float per candle) or empty
    d_lo: np.ndarray = field(default_factory=lambda: EMPTY_I)
    d_hi: np.ndarray = field(default_factory=lambda: EMPTY_I)
    dt: np.ndarray = field(default_factory=lambda: EMPTY_I)
    do: np.ndarray = field(default_factory=lambda: EMPTY_F)
    dh: np.ndarray = field(default_factory=lambda: EMPTY_F)
    dl: np.ndarray = field(default_factory=lambda: EMPTY_F)
    dc: np.ndarray = field(default_factory=lambda: EMPTY_F)


def run(
    state: TradingState,
    tf_ns: np.ndarray,
    market: MarketArrays,
    ev_pair: np.ndarray,
    ev_row: np.ndarray,
    ev_equity: np.ndarray,
    start: int = 0,
    end: int | None = None,
) -> None:
    """Process events ``[start, end)`` in place (see ``run_events`` for their meaning)."""
    stop = len(ev_row) if end is None else end
    e = start
    while True:
        e = run_events(
            state.acct_f, state.acct_i, state.pos_f, state.pos_i, state.ring,
            state.tr_f, state.tr_i, state.bl, state.prm_i, state.prm_f, state.lim, tf_ns,
            ev_pair, ev_row, ev_equity,
            market.t, market.o, market.h, market.lo, market.c,
            market.el, market.xl, market.es, market.xs, market.sd, market.td, market.atr,
            market.fxl, market.fxs, market.sz, market.d_lo, market.d_hi, market.dt, market.do, market.dh, market.dl, market.dc,
            e, stop,
        )  # fmt: skip
        if e >= stop:
            return
        state.grow()


def close_all_positions(state: TradingState, tf_ns: np.ndarray, reason: int) -> None:
    """Close every open position at its pair's last close with exit ``reason``."""
    state.reserve(0)
    force_close_all(
        state.acct_f, state.acct_i, state.pos_f, state.pos_i, state.ring,
        state.tr_f, state.tr_i, state.prm_i, state.prm_f, tf_ns, reason,
    )  # fmt: skip
