"""Shared pieces of the function library: spec collection, parameter shorthands, series helpers, warm-up maths.

Implementations receive ``pandas.Series`` for series parameters (already on the candle index) and plain
Python values for constants; they return float64 (or bool) Series / DataFrames on the same index.
Array-native ones (``arrays=True``) are written on numpy arrays and wrapped by :func:`array_native`,
so they still answer pandas callers with Series / DataFrames.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dsl.registry import REQUIRED, Column, FunctionSpec, Param, Registry
from dsl.types import BOOL, BOOL_CONST, NUMBER, NUMBER_CONST, STRING_CONST, Type

__all__ = [
    "SETTLE_TOLERANCE",
    "SpecList",
    "array_native",
    "as_bool",
    "as_float",
    "by_segments",
    "clean",
    "column",
    "condition",
    "const",
    "ema_settle",
    "finite_runs",
    "flag",
    "length",
    "segments",
    "series",
    "smoothing_settle",
    "text",
    "wilder_settle",
    "with_defaults",
]

Warmup = Callable[[Mapping[str, Any]], int]

# A recursive filter never forgets its seed completely; we call it settled once the seed's weight in the
# output has decayed below this fraction, so a plan started `warmup` candles earlier gives (nearly) the
# same value as one started at the beginning of history (live recomputation == backtest).
SETTLE_TOLERANCE = 1e-3


# ----- spec collection -------------------------------------------------------------------------------


class SpecList:
    """The specs one module contributes, collected by a decorator and added to a Registry on demand.

    Keeping the specs in a per-module list (instead of registering into a shared global at import time)
    lets ``default_registry()`` build a fresh Registry every time it is asked to.
    """

    def __init__(self) -> None:
        self._specs: list[FunctionSpec] = []

    def function(
        self,
        name: str,
        params: Iterable[Param],
        returns: Type | Mapping[str, Type],
        *,
        warmup: Warmup,
        category: str,
        example: str,
        default_output: str | None = None,
        arrays: bool = False,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Collect the decorated function. With ``arrays=True`` it is written on numpy arrays; what is
        registered (and returned) is :func:`array_native`'s wrapper, which also serves pandas callers."""
        params = tuple(params)

        def collect(impl: Callable[..., Any]) -> Callable[..., Any]:
            if arrays:
                impl = array_native(impl, list(returns) if isinstance(returns, Mapping) else None)
            self._specs.append(
                FunctionSpec(
                    name=name,
                    params=params,
                    returns=returns,
                    impl=impl,
                    warmup=with_defaults(params, warmup),
                    category=category,
                    doc=" ".join((impl.__doc__ or "").split()),
                    example=example,
                    default_output=default_output,
                    arrays=arrays,
                )
            )
            return impl

        return collect

    def add(self, spec: FunctionSpec) -> None:
        self._specs.append(spec)

    def register(self, registry: Registry) -> None:
        for spec in self._specs:
            registry.add(spec)

    def __iter__(self) -> Iterator[FunctionSpec]:
        return iter(self._specs)


def with_defaults(params: Sequence[Param], warmup: Warmup) -> Warmup:
    """Call ``warmup`` with every constant parameter present: given values over declared defaults."""
    defaults = {
        p.name: p.default
        for p in params
        if not p.type.series and not p.required and not isinstance(p.default, Column)
    }

    def filled(args: Mapping[str, Any]) -> int:
        return max(0, int(warmup({**defaults, **args})))

    return filled


# ----- parameter shorthands --------------------------------------------------------------------------


def series(name: str, doc: str = "", *, default: Any = REQUIRED) -> Param:
    """A positional series-of-number parameter (``source`` in ``ema(close, 12)``)."""
    return Param(name, NUMBER, default=default, doc=doc)


def condition(name: str, doc: str = "") -> Param:
    return Param(name, BOOL, doc=doc)


def column(name: str) -> Param:
    """A keyword-only candle input defaulting to the candle column of the same name (``atr(14, high=...)``)."""
    return Param(
        name, NUMBER, default=Column(name), keyword_only=True, doc=f"{name} prices (default: candles)"
    )


def length(
    name: str = "length",
    default: Any = REQUIRED,
    doc: str = "window length in candles",
    *,
    minimum: int = 1,
    maximum: int | None = None,
) -> Param:
    return Param(name, NUMBER_CONST, default=default, integer=True, min=minimum, max=maximum, doc=doc)


def const(
    name: str,
    default: Any = REQUIRED,
    doc: str = "",
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    keyword_only: bool = False,
) -> Param:
    return Param(
        name, NUMBER_CONST, default=default, min=minimum, max=maximum, doc=doc, keyword_only=keyword_only
    )


def text(name: str, choices: Sequence[str], default: Any = REQUIRED, doc: str = "") -> Param:
    return Param(name, STRING_CONST, default=default, choices=tuple(choices), doc=doc)


def flag(name: str, default: bool, doc: str = "") -> Param:
    return Param(name, BOOL_CONST, default=default, doc=doc)


# ----- series helpers --------------------------------------------------------------------------------


def as_float(values: Any, index: pd.Index, name: str | None = None) -> pd.Series:
    """A float64 Series on ``index`` (inf becomes NaN: an undefined value, not a huge one)."""
    array = np.array(values, dtype=np.float64, copy=True)
    array[np.isinf(array)] = np.nan
    return pd.Series(array, index=index, name=name)


def as_bool(values: Any, index: pd.Index, name: str | None = None) -> pd.Series:
    """A bool Series on ``index``; NaN counts as false."""
    array = np.asarray(values)
    if array.dtype != bool:
        array = np.nan_to_num(array.astype(np.float64), nan=0.0) != 0
    return pd.Series(array, index=index, name=name)


def clean(values: np.ndarray) -> np.ndarray:
    """A float64 copy of ``values`` with inf turned into NaN (the array form of :func:`as_float`)."""
    array = np.array(values, dtype=np.float64, copy=True)
    array[np.isinf(array)] = np.nan
    return array


def array_native(impl: Callable[..., Any], outputs: Sequence[str] | None) -> Callable[..., Any]:
    """Wrap an implementation written on arrays so pandas callers keep working.

    Called with arrays (the plan evaluator, other array functions) it is ``impl`` itself. Called with
    any ``pandas.Series`` argument, every Series becomes its array (bool stays bool, anything else
    float64) and the result is put back on that Series' index: a Series, or a DataFrame of ``outputs``.
    The maths exists once; only the packaging differs.
    """

    @functools.wraps(impl)
    def call(*args: Any, **kwargs: Any) -> Any:
        index = next(
            (v.index for v in (*args, *kwargs.values()) if isinstance(v, pd.Series)),
            None,
        )
        if index is None:
            return impl(*args, **kwargs)
        result = impl(*(_array(v) for v in args), **{k: _array(v) for k, v in kwargs.items()})
        if outputs is None:
            return pd.Series(result, index=index)
        return pd.DataFrame({name: result[name] for name in outputs}, index=index)

    return call


def _array(value: Any) -> Any:
    if not isinstance(value, pd.Series):
        return value
    if value.dtype == bool:
        return value.to_numpy()
    return value.to_numpy(dtype=np.float64, na_value=np.nan)


def rolling_max(values: np.ndarray, length: int) -> np.ndarray:
    """Highest of the last ``length`` values (current included); NaN until ``length`` values and
    wherever the window holds a NaN (as pandas' ``rolling(length, min_periods=length).max()``)."""
    return _rolling_extreme(values, length, "max")


def rolling_min(values: np.ndarray, length: int) -> np.ndarray:
    """Lowest of the last ``length`` values; NaN rules as :func:`rolling_max`."""
    return _rolling_extreme(values, length, "min")


def _rolling_extreme(values: np.ndarray, length: int, how: str) -> np.ndarray:
    # Extremes of windows of 1, 2, 4, ... candles, each from two halves; a window of any length is then
    # two overlapping power-of-two windows. log2(length) passes, and exact: max and min do not round.
    # np.maximum / np.minimum propagate NaN, as a window short of observations does in pandas.
    pick = np.maximum if how == "max" else np.minimum
    values = np.asarray(values, dtype=np.float64)
    size = len(values)
    out = np.full(size, np.nan)
    if length > size:
        return out
    span, width = values.copy(), 1
    while width * 2 <= length:
        span[width:] = pick(span[width:], span[:-width])
        width *= 2
    rest = length - width
    out[length - 1 :] = pick(span[length - 1 :], span[width - 1 : size - rest])
    return out


def finite_runs(inputs: Iterable[np.ndarray], size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of positions where every input is finite."""
    finite: np.ndarray | None = None
    for values in inputs:
        flags = np.isfinite(values)
        finite = flags if finite is None else np.logical_and(finite, flags, out=flags)
    if finite is None or size == 0:
        return [(0, size)] if size else []
    # The usual cases: all finite (candle columns) or undefined only at the start (an input's warm-up).
    first = int(finite.argmax())
    if finite[first:].all():
        return [(first, size)] if finite[first] else []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], finite.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def segments(
    compute: Callable[..., Any], inputs: Mapping[str, np.ndarray], width: int | None = None
) -> np.ndarray:
    """Run ``compute(**inputs)`` on each run of candles where every input is finite (arrays).

    TA-Lib (and most of pandas-ta) poisons every later value after a single NaN inside a recursive
    filter; treating a gap as a restart keeps one bad value (a division by zero, a missing feed value)
    from silencing an indicator forever. The usual case, NaN only at the start (warm-up of an input),
    costs a single call on the valid tail. Outputs are NaN inside gaps and inf becomes NaN. ``compute``
    gets array slices and returns an array of the run's length (``width`` None) or ``(length, width)``;
    it may return None when a run is too short, and that run then stays NaN. The result has shape
    ``(size,)`` or ``(size, width)``.
    """
    size = len(next(iter(inputs.values())))
    runs = finite_runs(inputs.values(), size)
    return _fill(
        compute, runs, lambda start, stop: {k: v[start:stop] for k, v in inputs.items()}, size, width
    )


def by_segments(
    compute: Callable[..., pd.Series | pd.DataFrame],
    inputs: Mapping[str, pd.Series],
    index: pd.Index,
    columns: Sequence[str] | None = None,
) -> pd.Series | pd.DataFrame:
    """:func:`segments` for pandas inputs: ``compute`` gets Series slices (pandas-ta needs their index),
    the result is a Series, or a DataFrame of ``columns``, on ``index``."""
    runs = finite_runs((s.to_numpy(dtype=np.float64, na_value=np.nan) for s in inputs.values()), len(index))
    width = None if columns is None else len(columns)
    out = _fill(
        compute,
        runs,
        lambda start, stop: {k: s.iloc[start:stop] for k, s in inputs.items()},
        len(index),
        width,
    )
    if columns is None:
        return pd.Series(out, index=index)
    return pd.DataFrame(out, index=index, columns=list(columns))


def _fill(
    compute: Callable[..., Any],
    runs: Sequence[tuple[int, int]],
    parts: Callable[[int, int], Mapping[str, Any]],
    size: int,
    width: int | None,
) -> np.ndarray:
    columns = 1 if width is None else width
    out = np.full((size, columns), np.nan)
    for start, stop in runs:
        result = compute(**parts(start, stop))
        if result is not None:
            out[start:stop] = np.asarray(result, dtype=np.float64).reshape(stop - start, columns)
    out[np.isinf(out)] = np.nan
    return out[:, 0] if width is None else out


# ----- warm-up maths ---------------------------------------------------------------------------------


def smoothing_settle(alpha: float) -> int:
    """Candles after its seed until an exponential filter's seed weight ``(1 - alpha)^k`` < tolerance."""
    if alpha >= 1:
        return 0
    return math.ceil(math.log(SETTLE_TOLERANCE) / math.log1p(-alpha))


def ema_settle(length: int) -> int:
    """EMA (alpha = 2 / (length + 1)): about 3.5 x length candles to forget its seed."""
    return smoothing_settle(2.0 / (length + 1))


def wilder_settle(length: int) -> int:
    """Wilder's smoothing (RSI, ATR, ADX; alpha = 1 / length): about 7 x length candles."""
    return smoothing_settle(1.0 / length)
