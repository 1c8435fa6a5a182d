"""Backtest many pairs over one capital pool with the trading kernel.

The pairs' candles are merged into one event order by (open time, pair) and handed to the same
compiled step function the live :class:`~engine.trading.Trader` calls; nothing here decides a trade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.backtest.inputs import BacktestInputError, PairInput, ValidPair, validate
from engine.backtest.metrics import compute_metrics, per_pair_table
from engine.trading import layout as L
from engine.trading.driver import MarketArrays, close_all_positions, run
from engine.trading.params import TradingParams
from engine.trading.state import TradingState, blocked_frame, trades_frame

__all__ = ["BacktestResult", "run_backtest"]


@dataclass(frozen=True, slots=True)
class BacktestResult:
    trades: pd.DataFrame  # one row per closed trade, in closing order (see state.TRADE_COLUMNS)
    equity: pd.Series  # equity at the close of every time step, indexed by candle open time (UTC)
    metrics: dict[str, Any]
    per_pair: pd.DataFrame
    blocked: pd.DataFrame  # entries the risk manager refused: time, pair, side, reason
    state: TradingState  # final state (positions are all closed with end_of_data)


def _detail_bounds(v: ValidPair, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """For each main candle, the slice of the pair's detail candles that lie inside it."""
    d = v.detail
    assert d is not None
    ends = np.empty_like(v.t)
    ends[:-1] = v.t[1:]
    ends[-1] = v.t[-1] + max(v.tf_ns, 1)
    # A candle after a gap in the main data covers only its own timeframe, not the gap.
    if v.tf_ns > 0:
        ends = np.minimum(ends, v.t + v.tf_ns)
    lo = np.searchsorted(d.open_time, v.t, side="left")
    hi = np.searchsorted(d.open_time, ends, side="left")
    return lo + offset, hi + offset


def _concat(parts: list[np.ndarray | None], lengths: list[int], fill: float) -> np.ndarray | None:
    if all(p is None for p in parts):
        return None
    return np.concatenate([np.full(n, fill) if p is None else p for p, n in zip(parts, lengths, strict=True)])


def build_market(valid: list[ValidPair]) -> MarketArrays:
    """Concatenate the pairs' arrays (pair k's rows follow pair k-1's)."""
    lengths = [len(v.t) for v in valid]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(v, name) for v in valid])

    market = MarketArrays(
        t=cat("t"), o=cat("o"), h=cat("h"), lo=cat("lo"), c=cat("c"),
        el=cat("el"), xl=cat("xl"), es=cat("es"), xs=cat("xs"),
    )  # fmt: skip
    for name in ("sd", "td", "atr"):
        values = _concat([getattr(v, name) for v in valid], lengths, np.nan)
        if values is not None:
            setattr(market, name, values)
    size = _concat([v.sz for v in valid], lengths, 1.0)
    if size is not None:
        market.sz = size
    for name in ("fxl", "fxs"):
        flags = [getattr(v, name) for v in valid]
        if any(f is not None and f.any() for f in flags):
            market.__setattr__(
                name,
                np.concatenate(
                    [np.zeros(n, np.bool_) if f is None else f for f, n in zip(flags, lengths, strict=True)]
                ),
            )
    if any(v.detail is not None for v in valid):
        d_lo, d_hi, dts, dos, dhs, dls, dcs = [], [], [], [], [], [], []
        offset = 0
        for v in valid:
            if v.detail is None:
                d_lo.append(np.zeros(len(v.t), dtype=np.int64))
                d_hi.append(np.zeros(len(v.t), dtype=np.int64))
                continue
            lo, hi = _detail_bounds(v, offset)
            d_lo.append(lo)
            d_hi.append(hi)
            dts.append(v.detail.open_time)
            dos.append(v.detail.open)
            dhs.append(v.detail.high)
            dls.append(v.detail.low)
            dcs.append(v.detail.close)
            offset += len(v.detail.open_time)
        market.d_lo = np.concatenate(d_lo).astype(np.int64)
        market.d_hi = np.concatenate(d_hi).astype(np.int64)
        market.dt = np.concatenate(dts)
        market.do, market.dh, market.dl, market.dc = (np.concatenate(x) for x in (dos, dhs, dls, dcs))
    return market


def event_order(times: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(pair, row) of every candle of the concatenated pairs, sorted by (open time, pair)."""
    lengths = [len(t) for t in times]
    n_pairs = len(times)
    first = times[0]
    if all(len(t) == len(first) and np.array_equal(t, first) for t in times[1:]):
        # All pairs share one time grid (the usual case): interleave without sorting.
        n = len(first)
        ev_pair = np.tile(np.arange(n_pairs, dtype=np.int64), n)
        rows = (np.arange(n, dtype=np.int64)[:, None] + np.arange(n_pairs, dtype=np.int64) * n).ravel()
        return ev_pair, rows
    # Each pair's times are a sorted run, and a stable sort keeps pair order on equal times.
    rows = np.argsort(np.concatenate(times), kind="stable").astype(np.int64)
    pair_of_row = np.repeat(np.arange(n_pairs, dtype=np.int64), lengths)
    return pair_of_row[rows], rows


def run_backtest(pairs: Mapping[str, PairInput], params: TradingParams) -> BacktestResult:
    """Simulate ``params`` over every pair's candles and signals, sharing one capital pool."""
    if not pairs:
        raise BacktestInputError("no pairs to backtest")
    names = list(pairs)
    valid = [validate(name, pairs[name]) for name in names]
    ev_pair, ev_row = event_order([v.t for v in valid])
    market = build_market(valid)
    tf_ns = np.array([v.tf_ns for v in valid], dtype=np.int64)
    ev_equity = np.empty(len(ev_row), dtype=np.float64)

    state = TradingState.new(names, params, trade_capacity=4096, blocked_capacity=4096)
    run(state, tf_ns, market, ev_pair, ev_row, ev_equity)
    close_all_positions(state, tf_ns, L.EXIT_END_OF_DATA)

    ev_t = market.t[ev_row]
    last_of_step = np.empty(len(ev_t), dtype=np.bool_)
    last_of_step[:-1] = ev_t[1:] != ev_t[:-1]
    last_of_step[-1] = True
    values = ev_equity[last_of_step]
    values[-1] = state.equity  # the last close includes the end_of_data exits and their fees
    index = pd.DatetimeIndex(ev_t[last_of_step].astype("datetime64[ns]")).tz_localize("UTC")
    equity = pd.Series(values, index=index.rename("date"), name="equity")

    trades = trades_frame(state)
    return BacktestResult(
        trades=trades,
        equity=equity,
        metrics=compute_metrics(trades, equity, params.initial_capital),
        per_pair=per_pair_table(trades, names),
        blocked=blocked_frame(state),
        state=state,
    )
