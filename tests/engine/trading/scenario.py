"""Tiny hand-made markets for the kernel tests: candles as (open, high, low, close) rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from engine.backtest import BacktestResult, DetailCandles, PairInput, run_backtest
from engine.trading import TradingParams

T0 = pd.Timestamp("2024-01-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)


def flat(n: int, price: float = 100.0) -> list[tuple[float, float, float, float]]:
    """``n`` candles that never move (stops and targets a few % away are never touched)."""
    return [(price, price, price, price)] * n


def times(n: int, start: pd.Timestamp = T0, step: pd.Timedelta = HOUR) -> np.ndarray:
    return start.as_unit("ns").value + step.value * np.arange(n, dtype=np.int64)


def flags(n: int, at: Iterable[int]) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(at)] = True
    return out


def pair(
    ohlc: Sequence[tuple[float, float, float, float]],
    *,
    start: pd.Timestamp = T0,
    step: pd.Timedelta = HOUR,
    entry_long: Iterable[int] = (),
    exit_long: Iterable[int] = (),
    entry_short: Iterable[int] = (),
    exit_short: Iterable[int] = (),
    stop_distance: Sequence[float] | None = None,
    take_profit_distance: Sequence[float] | None = None,
    atr: Sequence[float] | None = None,
    detail: DetailCandles | None = None,
) -> PairInput:
    n = len(ohlc)
    px = np.asarray(ohlc, dtype=np.float64).reshape(n, 4)

    def opt(values: Sequence[float] | None) -> np.ndarray | None:
        return None if values is None else np.asarray(values, dtype=np.float64)

    return PairInput(
        open_time=times(n, start, step),
        open=px[:, 0].copy(),
        high=px[:, 1].copy(),
        low=px[:, 2].copy(),
        close=px[:, 3].copy(),
        entry_long=flags(n, entry_long),
        exit_long=flags(n, exit_long),
        entry_short=flags(n, entry_short),
        exit_short=flags(n, exit_short),
        stop_distance=opt(stop_distance),
        take_profit_distance=opt(take_profit_distance),
        atr=opt(atr),
        detail=detail,
        timeframe_ns=step.value,
    )


def detail_candles(
    rows: Sequence[tuple[float, float, float, float]], start: pd.Timestamp, step: pd.Timedelta
) -> DetailCandles:
    px = np.asarray(rows, dtype=np.float64).reshape(len(rows), 4)
    return DetailCandles(times(len(rows), start, step), *(px[:, j].copy() for j in range(4)))


def run(pairs: PairInput | dict[str, PairInput], **params: object) -> BacktestResult:
    """Backtest with a 1000 capital pool and fees off unless the test sets them."""
    settings: dict[str, object] = {"initial_capital": 1000.0, "fee_maker": 0.0, "fee_taker": 0.0}
    settings.update(params)
    if isinstance(pairs, PairInput):
        pairs = {"A/USDT": pairs}
    return run_backtest(pairs, TradingParams(**settings))  # type: ignore[arg-type]
