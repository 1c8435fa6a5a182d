"""Shared helpers for the indicator tests: real candles, default arguments per spec, result frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsl.registry import Column, FunctionSpec
from dsl.types import Kind


def load_candles(directory: Path, name: str) -> pd.DataFrame:
    frame = pd.read_csv(directory / name, parse_dates=["date"], index_col="date")
    return frame[["open", "high", "low", "close", "volume"]].astype("float64")


def default_kwargs(spec: FunctionSpec, candles: pd.DataFrame, **overrides: Any) -> dict[str, Any]:
    """Arguments for ``spec.impl`` as the evaluator passes them: defaults, candle columns, and for the
    few required arguments a reasonable value (close for series, a bullish-candle flag for conditions)."""
    kwargs: dict[str, Any] = {}
    for p in spec.params:
        if p.name in overrides:
            kwargs[p.name] = overrides[p.name]
        elif isinstance(p.default, Column):
            kwargs[p.name] = candles[p.default.name].copy()
        elif not p.required:
            kwargs[p.name] = p.default
        elif p.type.series and p.type.kind is Kind.NUMBER:
            kwargs[p.name] = candles["close"].copy()
        elif p.type.series and p.type.kind is Kind.BOOL:
            kwargs[p.name] = candles["close"] > candles["open"]
        elif p.choices:
            kwargs[p.name] = "engulfing" if "engulfing" in p.choices else p.choices[0]
        elif p.integer:
            kwargs[p.name] = 14
        else:
            raise AssertionError(f"no test value for required {spec.name}({p.name})")
    return kwargs


def constants(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if not isinstance(v, pd.Series)}


def run(spec: FunctionSpec, candles: pd.DataFrame, **overrides: Any) -> pd.DataFrame:
    result = spec.impl(**default_kwargs(spec, candles, **overrides))
    return result.to_frame("value") if isinstance(result, pd.Series) else result


def matrix(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


def agree(a: np.ndarray, b: np.ndarray, relative: float) -> np.ndarray:
    """Elementwise agreement within ``relative`` of each column's spread; NaN only matches NaN."""
    finite = np.where(np.isfinite(a), a, np.nan)
    with np.errstate(all="ignore"):
        spread = np.nan_to_num(np.nanstd(finite, axis=0), nan=0.0) if finite.size else 0.0
    tol = relative * spread + 1e-9 * np.abs(np.nan_to_num(a)) + 1e-12
    return (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= tol)


def leading_nan(column: np.ndarray) -> int | None:
    """Leading NaN count of a column, or None when NaN also appears later (gaps by design: long/short
    lines, "no level" values), where the leading run says nothing about warm-up."""
    valid = ~np.isnan(column)
    if not valid.any():
        return len(column)
    first = int(np.argmax(valid))
    return first if valid[first:].all() else None
