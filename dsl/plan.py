"""The compiled form of a strategy: a DAG of nodes evaluated column-wise on candle arrays.

Nodes are interned by their structure, so an expression written several times (``ema(close, 12)``
in a feature and in a rule) is one node and is computed once. Every node lives on one timeframe;
``align`` nodes carry values of a higher timeframe down to a lower one using candle *close* times,
so a 1h value becomes visible only once its 1h candle has closed: no look-ahead by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dsl.registry import Registry
from dsl.timeframes import timeframe_seconds
from dsl.types import Kind, Type

__all__ = ["Node", "Plan", "resample_candles"]

CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")
DERIVED_COLUMNS = ("hl2", "hlc3", "ohlc4")
SERIES_NAMES = CANDLE_COLUMNS + DERIVED_COLUMNS

_NS = 1_000_000_000
# Weekly candles start on Monday (as exchanges do); the Unix epoch was a Thursday.
_WEEK_ORIGIN_NS = 4 * 86_400 * _NS


@dataclass(frozen=True, slots=True)
class Node:
    """One computation. ``args`` hold node ids (ints) and literal parameters, by ``op``:

    column (name,) | const (value,) | call (function, ((param, kind, value), ...)) where kind is
    "node" or "value" | output (call_node, member) | neg (a,) | not (a,) | binary (op, a, b) |
    compare (op, a, b) | logical (op, a, b) | shift (a, bars) | align (a,) | feed (name, path)
    """

    op: str
    tf: str | None
    args: tuple[Any, ...]
    type: Type

    def describe(self, nodes: list[Node]) -> str:
        def ref(i: Any) -> str:
            return f"%{i}"

        match self.op:
            case "column" | "const":
                body = repr(self.args[0])
            case "call":
                parts = [f"{p}={ref(v) if k == 'node' else repr(v)}" for p, k, v in self.args[1]]
                body = f"{self.args[0]}({', '.join(parts)})"
            case "output":
                body = f"{ref(self.args[0])}.{self.args[1]}"
            case "binary" | "compare" | "logical":
                body = f"{ref(self.args[1])} {self.args[0]} {ref(self.args[2])}"
            case "shift":
                body = f"{ref(self.args[0])}[{self.args[1]}]"
            case "feed":
                body = ".".join((self.args[0], *self.args[1]))
            case _:
                body = ", ".join(ref(a) for a in self.args)
        return f"{self.op}@{self.tf} {body}" if self.tf else f"{self.op} {body}"


@dataclass(frozen=True)
class Plan:
    """Outputs (rules and features) over a node DAG, with the warm-up it needs on ``timeframe``."""

    timeframe: str
    nodes: tuple[Node, ...]
    outputs: Mapping[str, int]
    output_types: Mapping[str, Type]
    warmup: int
    registry: Registry = field(repr=False, compare=False)

    @property
    def timeframes(self) -> frozenset[str]:
        return frozenset(n.tf for n in self.nodes if n.tf) | {self.timeframe}

    def describe(self) -> str:
        """A stable text form of the DAG (used by tests and `engine eval --explain`)."""
        lines = [f"%{i} = {node.describe(list(self.nodes))}" for i, node in enumerate(self.nodes)]
        lines += [f"{name} -> %{node}" for name, node in self.outputs.items()]
        lines.append(f"warmup = {self.warmup}")
        return "\n".join(lines)

    def evaluate(self, candles: pd.DataFrame, context: Any = None) -> pd.DataFrame:
        """Every output as a column on ``candles.index`` (bool for conditions, float64 for numbers)."""
        frames = {self.timeframe: candles}
        for tf in self.timeframes - {self.timeframe}:
            frames[tf] = resample_candles(candles, tf)
        values: list[Any] = []
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for node in self.nodes:
                values.append(self._compute(node, values, frames, context))
        length = len(candles)
        columns = {}
        for name, node_id in self.outputs.items():
            value = values[node_id]
            kind = self.output_types[name].kind
            if np.ndim(value) == 0:
                value = np.full(length, value, dtype=bool if kind is Kind.BOOL else np.float64)
            columns[name] = value
        return pd.DataFrame(columns, index=candles.index)

    def _compute(
        self, node: Node, values: list[Any], frames: Mapping[str, pd.DataFrame], context: Any
    ) -> Any:
        args = node.args
        match node.op:
            case "const":
                return args[0]
            case "column":
                return _column(frames[node.tf], args[0])
            case "call":
                return self._call(node, values, frames[node.tf])
            case "output":
                result = values[args[0]]
                picked = result[args[1]] if isinstance(result, pd.DataFrame) else result
                return _as_array(picked, node.type)
            case "neg":
                return -values[args[0]]
            case "not":
                return ~values[args[0]]
            case "binary":
                return _BINARY[args[0]](values[args[1]], values[args[2]])
            case "compare":
                return _COMPARE[args[0]](values[args[1]], values[args[2]])
            case "logical":
                left, right = values[args[1]], values[args[2]]
                return (left & right) if args[0] == "and" else (left | right)
            case "shift":
                return _shift(values[args[0]], args[1])
            case "align":
                child = self.nodes[args[0]]
                return _align(values[args[0]], frames[child.tf], child.tf, frames[node.tf], node.tf)
            case "feed":
                feed = self.registry.feeds[args[0]]
                return _as_array(
                    feed.impl(args[1], _FeedContext(frames[node.tf], node.tf, context)), node.type
                )
        raise ValueError(f"unknown plan node {node.op!r}")

    def _call(self, node: Node, values: list[Any], frame: pd.DataFrame) -> Any:
        spec = self.registry.functions[node.args[0]]
        kwargs: dict[str, Any] = {}
        for name, kind, value in node.args[1]:
            if kind == "node":
                value = values[value]
                param = spec.param(name)
                if np.ndim(value) == 0 and param is not None and param.type.series:
                    value = np.full(
                        len(frame), value, dtype=bool if param.type.kind is Kind.BOOL else np.float64
                    )
                if isinstance(value, np.ndarray):
                    value = pd.Series(value, index=frame.index, name=name)
            kwargs[name] = value
        result = spec.impl(**kwargs)
        if len(result) != len(frame):
            raise ValueError(f"{spec.name}() returned {len(result)} rows for {len(frame)} candles")
        # Multi-output results stay a frame; `output` nodes pick their columns from it.
        return result if spec.outputs is not None else _as_array(result, node.type)


@dataclass(frozen=True, slots=True)
class _FeedContext:
    candles: pd.DataFrame
    timeframe: str
    user: Any


def _as_array(value: Any, type_: Type) -> np.ndarray:
    if type_.kind is Kind.BOOL:
        array = np.asarray(value)
        if array.dtype != bool:
            array = np.nan_to_num(array.astype(np.float64), nan=0.0) != 0
        return array
    return np.asarray(value, dtype=np.float64)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name in CANDLE_COLUMNS:
        return frame[name].to_numpy(dtype=np.float64)
    high, low, close = (frame[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close"))
    if name == "hl2":
        return (high + low) / 2
    if name == "hlc3":
        return (high + low + close) / 3
    return (frame["open"].to_numpy(dtype=np.float64) + high + low + close) / 4


def _shift(value: Any, bars: int) -> Any:
    if np.ndim(value) == 0 or bars == 0:
        return value
    out = np.empty_like(value)
    out[:bars] = False if value.dtype == bool else np.nan
    out[bars:] = value[:-bars] if bars < len(value) else value[:0]
    return out


def _close_times(frame: pd.DataFrame, tf: str) -> np.ndarray:
    return _open_ns(frame) + timeframe_seconds(tf) * _NS


def _open_ns(frame: pd.DataFrame) -> np.ndarray:
    return frame.index.as_unit("ns").asi8


def _align(value: Any, source: pd.DataFrame, source_tf: str, target: pd.DataFrame, target_tf: str) -> Any:
    """Carry a series from ``source_tf`` candles to ``target_tf`` candles by close time (no look-ahead)."""
    if np.ndim(value) == 0:
        return value
    position = (
        np.searchsorted(_close_times(source, source_tf), _close_times(target, target_tf), side="right") - 1
    )
    missing = position < 0
    out = value[np.maximum(position, 0)]
    if missing.any():
        out = out.copy()
        out[missing] = False if value.dtype == bool else np.nan
    return out


def resample_candles(candles: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate candles into ``timeframe`` buckets (UTC, weeks from Monday); the last bucket may be partial."""
    step = timeframe_seconds(timeframe) * _NS
    if len(candles) == 0:
        return candles.iloc[:0]
    opens = _open_ns(candles)
    origin = _WEEK_ORIGIN_NS if timeframe == "1w" else 0
    buckets = (opens - origin) // step
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(buckets)] - 1
    columns = {
        "open": candles["open"].to_numpy(dtype=np.float64)[starts],
        "high": np.maximum.reduceat(candles["high"].to_numpy(dtype=np.float64), starts),
        "low": np.minimum.reduceat(candles["low"].to_numpy(dtype=np.float64), starts),
        "close": candles["close"].to_numpy(dtype=np.float64)[ends],
        "volume": np.add.reduceat(candles["volume"].to_numpy(dtype=np.float64), starts),
    }
    index = pd.DatetimeIndex(buckets[starts] * step + origin, tz="UTC", name="date").as_unit("ns")
    return pd.DataFrame(columns, index=index)


def _eq(a: Any, b: Any) -> Any:
    return a == b


def _ne(a: Any, b: Any) -> Any:
    return a != b


_BINARY = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
}
_COMPARE = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": _eq,
    "!=": _ne,
}
