"""Shared pieces of the function library: spec collection, parameter shorthands, series helpers, warm-up maths.

Implementations receive ``pandas.Series`` for series parameters (already on the candle index) and plain
Python values for constants; they return float64 (or bool) Series / DataFrames on the same index.
"""

from __future__ import annotations

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
    "as_bool",
    "as_float",
    "by_segments",
    "column",
    "condition",
    "const",
    "ema_settle",
    "flag",
    "length",
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
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        params = tuple(params)

        def collect(impl: Callable[..., Any]) -> Callable[..., Any]:
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


def by_segments(
    compute: Callable[..., pd.Series | pd.DataFrame],
    inputs: Mapping[str, pd.Series],
    index: pd.Index,
    columns: Sequence[str] | None = None,
) -> pd.Series | pd.DataFrame:
    """Run ``compute(**inputs)`` on each run of candles where every input is finite.

    TA-Lib (and most of pandas-ta) poisons every later value after a single NaN inside a recursive
    filter; treating a gap as a restart keeps one bad value (a division by zero, a missing feed value)
    from silencing an indicator forever. The usual case, NaN only at the start (warm-up of an input),
    costs a single call on the valid tail. Outputs are NaN inside gaps. ``compute`` may return None when
    a run is too short; that run then stays NaN.
    """
    finite = np.ones(len(index), dtype=bool)
    for s in inputs.values():
        finite &= np.isfinite(s.to_numpy(dtype=np.float64, na_value=np.nan))
    names = ["value"] if columns is None else list(columns)
    out = np.full((len(index), len(names)), np.nan)
    # Boundaries of the runs of finite candles.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], finite.astype(np.int8), [0]))))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        result = compute(**{k: s.iloc[start:stop] for k, s in inputs.items()})
        if result is not None:
            out[start:stop] = np.asarray(result, dtype=np.float64).reshape(stop - start, len(names))
    out[np.isinf(out)] = np.nan
    if columns is None:
        return pd.Series(out[:, 0], index=index)
    return pd.DataFrame(out, index=index, columns=names)


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
