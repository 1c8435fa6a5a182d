"""What a backtest consumes per pair: candles, the strategy's signals, optional detail candles.

:class:`PairInput` holds plain numpy arrays (the bench and the runner build them directly);
:meth:`PairInput.from_frames` reads the candle-frame contract and a signals frame. :func:`validate`
checks one pair and raises :class:`BacktestInputError` naming the pair, the column and the candle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SIGNAL_COLUMNS", "BacktestInputError", "DetailCandles", "PairInput", "ValidPair", "validate"]

# fast_exit_*: an exit that a live bot following the trade stream could take before the close; a
# backtest fills it at the next open, no better than the signal candle's low (long) / high (short).
BOOL_SIGNALS = ("entry_long", "exit_long", "entry_short", "exit_short", "fast_exit_long", "fast_exit_short")
FLOAT_SIGNALS = ("stop_distance", "take_profit_distance", "atr")
# size: the strategy's ``size:`` (a fraction of the stake; the kernel clips it: > 1 is 1, 0 / below /
# NaN is no entry), present only for strategies that have one.
SIGNAL_COLUMNS = BOOL_SIGNALS + FLOAT_SIGNALS + ("size",)


class BacktestInputError(ValueError):
    """Malformed backtest input (lengths, NaN prices, unsorted times...), with the pair it concerns."""


def _times_ns(index: pd.Index, what: str) -> np.ndarray:
    if not isinstance(index, pd.DatetimeIndex):
        raise BacktestInputError(f"{what}: the index must be a DatetimeIndex of candle open times")
    if index.tz is None:
        index = index.tz_localize("UTC")
    return index.tz_convert("UTC").as_unit("ns").asi8.copy()


@dataclass(frozen=True, slots=True)
class DetailCandles:
    """Lower-timeframe candles covering the main candles, for the bar magnifier."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def from_frame(cls, candles: pd.DataFrame) -> DetailCandles:
        return cls(_times_ns(candles.index, "detail candles"), *_ohlc(candles, "detail candles"))


def _ohlc(candles: pd.DataFrame, what: str) -> tuple[np.ndarray, ...]:
    missing = [c for c in ("open", "high", "low", "close") if c not in candles.columns]
    if missing:
        raise BacktestInputError(f"{what}: missing column(s) {', '.join(missing)}")
    # No copy: the runner concatenates the pairs into fresh arrays anyway.
    return tuple(candles[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close"))


@dataclass(frozen=True, slots=True)
class PairInput:
    """One pair's candles (open time in int64 ns, UTC) and signals, all of one length.

    Missing boolean signals are all False; missing distances are NaN (the percentages from the
    trading parameters apply). ``timeframe_ns`` defaults to the smallest gap between candles."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    entry_long: np.ndarray | None = None
    exit_long: np.ndarray | None = None
    entry_short: np.ndarray | None = None
    exit_short: np.ndarray | None = None
    stop_distance: np.ndarray | None = None
    take_profit_distance: np.ndarray | None = None
    atr: np.ndarray | None = None
    detail: DetailCandles | None = None
    timeframe_ns: int | None = None
    fast_exit_long: np.ndarray | None = None
    fast_exit_short: np.ndarray | None = None
    size: np.ndarray | None = None

    @classmethod
    def from_frames(
        cls,
        candles: pd.DataFrame,
        signals: pd.DataFrame | Mapping[str, pd.Series] | None = None,
        *,
        detail: pd.DataFrame | None = None,
        timeframe: str | None = None,
    ) -> PairInput:
        """Candles in the candle-frame contract; ``signals`` with any of ``SIGNAL_COLUMNS`` (other
        columns, such as named features, are ignored) on the same index."""
        open_time = _times_ns(candles.index, "candles")
        columns: dict[str, np.ndarray] = {}
        for name, series in (signals or {}).items() if isinstance(signals, Mapping) else _items(signals):
            if name not in SIGNAL_COLUMNS:
                continue
            if isinstance(series, pd.Series) and not series.index.equals(candles.index):
                raise BacktestInputError(f"signal '{name}' is not on the candles' index")
            if name in BOOL_SIGNALS and np.asarray(series).dtype == np.bool_:
                values = np.asarray(series)
            elif name in BOOL_SIGNALS:
                # A condition that is NaN/NA during an indicator's warm-up is simply not true.
                values = np.nan_to_num(_floats(series), nan=0.0) != 0.0
            else:
                values = _floats(series)
            columns[name] = values
        tf_ns = None
        if timeframe is not None:
            from dsl.timeframes import timeframe_seconds

            tf_ns = timeframe_seconds(timeframe) * 1_000_000_000
        return cls(
            open_time,
            *_ohlc(candles, "candles"),
            **columns,
            detail=DetailCandles.from_frame(detail) if detail is not None else None,
            timeframe_ns=tf_ns,
        )


def _floats(values: pd.Series | np.ndarray) -> np.ndarray:
    """float64 values with NaN for missing ones, whatever the (nullable) dtype."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def _items(signals: pd.DataFrame | None) -> list[tuple[str, pd.Series]]:
    return [] if signals is None else [(str(c), signals[c]) for c in signals.columns]


@dataclass(frozen=True, slots=True)
class ValidPair:
    """A validated pair: contiguous float64/int64/bool arrays, every signal present."""

    t: np.ndarray
    o: np.ndarray
    h: np.ndarray
    lo: np.ndarray
    c: np.ndarray
    el: np.ndarray
    xl: np.ndarray
    es: np.ndarray
    xs: np.ndarray
    sd: np.ndarray | None
    td: np.ndarray | None
    atr: np.ndarray | None
    detail: DetailCandles | None
    tf_ns: int
    fxl: np.ndarray | None = None
    fxs: np.ndarray | None = None
    sz: np.ndarray | None = None


def _when(t: np.ndarray, k: int) -> str:
    return f"{pd.Timestamp(int(t[k]), unit='ns', tz='UTC'):%Y-%m-%dT%H:%M:%SZ} (row {k})"


def _check_prices(pair: str, what: str, t: np.ndarray, cols: dict[str, np.ndarray]) -> None:
    for name, values in cols.items():
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            k = int(np.argmax(bad))
            raise BacktestInputError(
                f"{pair}: {what} {name} is {float(values[k])!r} at {_when(t, k)}; prices must be finite and > 0"
            )
    high, low = cols["high"], cols["low"]
    bad = (
        (high < low)
        | (high < cols["open"])
        | (high < cols["close"])
        | (low > cols["open"])
        | (low > cols["close"])
    )
    if bad.any():
        k = int(np.argmax(bad))
        raise BacktestInputError(
            f"{pair}: {what} at {_when(t, k)} is inconsistent: open={float(cols['open'][k])!r} "
            f"high={float(high[k])!r} low={float(low[k])!r} close={float(cols['close'][k])!r}"
        )


def _check_times(pair: str, what: str, t: np.ndarray) -> None:
    if t.dtype.kind not in "iu":
        raise BacktestInputError(
            f"{pair}: {what} open_time must be int64 nanoseconds or datetime64, got {t.dtype}"
        )
    if len(t) > 1:
        steps = np.diff(t)
        if (steps <= 0).any():
            k = int(np.argmax(steps <= 0)) + 1
            raise BacktestInputError(f"{pair}: {what} times must be strictly increasing; see {_when(t, k)}")


def _as_ns(times: np.ndarray) -> np.ndarray:
    times = np.asarray(times)
    if times.dtype.kind == "M":
        return times.astype("datetime64[ns]").view(np.int64)
    return times


def validate(pair: str, data: PairInput) -> ValidPair:
    n = len(data.open_time)
    if n == 0:
        raise BacktestInputError(f"{pair}: no candles")
    for name in ("open", "high", "low", "close", *SIGNAL_COLUMNS):
        values = getattr(data, name)
        if values is not None and len(values) != n:
            raise BacktestInputError(f"{pair}: '{name}' has {len(values)} values but there are {n} candles")
    raw_t = _as_ns(data.open_time)
    _check_times(pair, "candle", raw_t)
    t = np.ascontiguousarray(raw_t, dtype=np.int64)
    prices = {
        name: np.ascontiguousarray(getattr(data, name), dtype=np.float64)
        for name in ("open", "high", "low", "close")
    }
    _check_prices(pair, "candle", t, prices)

    def flag(name: str) -> np.ndarray:
        values = getattr(data, name)
        if values is None:
            return np.zeros(n, dtype=np.bool_)
        return np.ascontiguousarray(values, dtype=np.bool_)

    def distance(name: str) -> np.ndarray | None:
        values = getattr(data, name)
        if values is None:
            return None
        values = np.ascontiguousarray(values, dtype=np.float64)
        if np.isinf(values).any():
            k = int(np.argmax(np.isinf(values)))
            raise BacktestInputError(f"{pair}: '{name}' is infinite at {_when(t, k)}")
        return values

    detail = data.detail
    if detail is not None:
        m = len(detail.open_time)
        for name in ("open", "high", "low", "close"):
            if len(getattr(detail, name)) != m:
                raise BacktestInputError(
                    f"{pair}: detail '{name}' has {len(getattr(detail, name))} values but there are {m} detail candles"
                )
        raw_dt = _as_ns(detail.open_time)
        _check_times(pair, "detail candle", raw_dt)
        dt = np.ascontiguousarray(raw_dt, dtype=np.int64)
        dcols = {
            name: np.ascontiguousarray(getattr(detail, name), dtype=np.float64)
            for name in ("open", "high", "low", "close")
        }
        _check_prices(pair, "detail candle", dt, dcols)
        detail = DetailCandles(dt, dcols["open"], dcols["high"], dcols["low"], dcols["close"])

    tf_ns = data.timeframe_ns
    if tf_ns is None:
        tf_ns = int(np.diff(t).min()) if n > 1 else 0
    return ValidPair(
        t=t,
        o=prices["open"],
        h=prices["high"],
        lo=prices["low"],
        c=prices["close"],
        el=flag("entry_long"),
        xl=flag("exit_long"),
        es=flag("entry_short"),
        xs=flag("exit_short"),
        sd=distance("stop_distance"),
        td=distance("take_profit_distance"),
        atr=distance("atr"),
        detail=detail,
        tf_ns=int(tf_ns),
        fxl=flag("fast_exit_long"),
        fxs=flag("fast_exit_short"),
        sz=None if data.size is None else np.ascontiguousarray(data.size, dtype=np.float64),
    )
