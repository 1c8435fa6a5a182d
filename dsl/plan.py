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

    def evaluate(self, candles: pd.DataFrame, context: Any = None, *, arrays: bool = True) -> pd.DataFrame:
        """Every output as a column on ``candles.index`` (bool for conditions, float64 for numbers).

        ``arrays=False`` hands every function pandas Series, as before array-native functions existed
        (same values; kept to measure what the array path saves)."""
        values = self._run(_Frames(self.timeframe, candles=candles), context, arrays)
        return pd.DataFrame(values, index=candles.index)

    def evaluate_arrays(
        self, columns: Mapping[str, np.ndarray], times: np.ndarray, context: Any = None
    ) -> dict[str, np.ndarray]:
        """:meth:`evaluate` without a DataFrame: ``columns`` maps candle column names to float64 arrays,
        ``times`` holds the candle open times (int64 ns since the epoch, UTC, ascending). Returns every
        output as an array of ``len(times)`` values. Array-native functions get the arrays as they are;
        a DatetimeIndex (for other functions and feeds) and higher-timeframe candles are built only if
        the plan needs them. The inputs are never modified, but an output may be one of them (a rule
        that is just ``close``): copy before keeping outputs beyond the inputs' lifetime."""
        return self._run(_Frames(self.timeframe, columns=columns, times=times), context, True)

    def _run(self, frames: _Frames, context: Any, arrays: bool) -> dict[str, np.ndarray]:
        values: list[Any] = []
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for node in self.nodes:
                values.append(self._compute(node, values, frames, context, arrays))
        length = frames.length(self.timeframe)
        columns = {}
        for name, node_id in self.outputs.items():
            value = values[node_id]
            kind = self.output_types[name].kind
            if np.ndim(value) == 0:
                value = np.full(length, value, dtype=bool if kind is Kind.BOOL else np.float64)
            columns[name] = value
        return columns

    def _compute(self, node: Node, values: list[Any], frames: _Frames, context: Any, arrays: bool) -> Any:
        args = node.args
        match node.op:
            case "const":
                return args[0]
            case "column":
                return frames.column(node.tf, args[0])
            case "call":
                return self._call(node, values, frames, arrays)
            case "output":
                result = values[args[0]]
                picked = result[args[1]] if isinstance(result, pd.DataFrame | dict) else result
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
                return _align(values[args[0]], *frames.alignment(child.tf, node.tf))
            case "feed":
                feed = self.registry.feeds[args[0]]
                return _as_array(
                    feed.impl(args[1], _FeedContext(frames.frame(node.tf), node.tf, context)), node.type
                )
        raise ValueError(f"unknown plan node {node.op!r}")

    def _call(self, node: Node, values: list[Any], frames: _Frames, arrays: bool) -> Any:
        spec = self.registry.functions[node.args[0]]
        length = frames.length(node.tf)
        native = arrays and spec.arrays
        kwargs: dict[str, Any] = {}
        for name, kind, value in node.args[1]:
            if kind == "node":
                value = values[value]
                param = spec.param(name)
                if np.ndim(value) == 0 and param is not None and param.type.series:
                    value = np.full(length, value, dtype=bool if param.type.kind is Kind.BOOL else np.float64)
                if not native and isinstance(value, np.ndarray):
                    value = pd.Series(value, index=frames.index(node.tf), name=name)
            kwargs[name] = value
        result = spec.impl(**kwargs)
        if spec.outputs is None:
            _check_rows(spec.name, result, length)
            return _as_array(result, node.type)
        # Multi-output results stay a frame (or a dict of arrays); `output` nodes pick their members.
        for member in result.values() if isinstance(result, dict) else (result,):
            _check_rows(spec.name, member, length)
        return result


def _check_rows(name: str, result: Any, length: int) -> None:
    if len(result) != length:
        raise ValueError(f"{name}() returned {len(result)} rows for {length} candles")


class _Frames:
    """The candles of one evaluation on every timeframe, made only when something asks for them.

    The plan's own timeframe comes as a DataFrame (``candles``) or as arrays (``columns``, ``times``).
    Higher timeframes are aggregated as arrays; a DatetimeIndex or a DataFrame (for functions that take
    Series, and for feeds) is built on first use, once per evaluation; so is each alignment between two
    timeframes, which every ``x@1h`` of the same timeframes shares."""

    def __init__(
        self,
        timeframe: str,
        *,
        candles: pd.DataFrame | None = None,
        columns: Mapping[str, np.ndarray] | None = None,
        times: np.ndarray | None = None,
    ) -> None:
        self.timeframe = timeframe
        self._candles = candles
        self._frames: dict[str, pd.DataFrame] = {}
        self._columns: dict[str, dict[str, np.ndarray]] = {timeframe: {}}
        self._times: dict[str, np.ndarray] = {}
        self._indexes: dict[str, pd.DatetimeIndex] = {}
        self._alignments: dict[tuple[str, str], tuple[np.ndarray, np.ndarray | None]] = {}
        if candles is not None:
            self._frames[timeframe] = candles
        else:
            assert columns is not None and times is not None
            self._columns[timeframe] = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
            self._times[timeframe] = np.asarray(times, dtype=np.int64)

    def times(self, tf: str) -> np.ndarray:
        """Open times, int64 ns."""
        times = self._times.get(tf)
        if times is None:
            if tf == self.timeframe:
                assert self._candles is not None
                times = self._times[tf] = _open_ns(self._candles)
            else:
                self._resample(tf)
                times = self._times[tf]
        return times

    def length(self, tf: str | None) -> int:
        if (tf is None or tf == self.timeframe) and self._candles is not None:
            return len(self._candles)
        return len(self.times(tf or self.timeframe))

    def _read(self, tf: str, name: str) -> np.ndarray:
        columns = self._columns.get(tf)
        if columns is None:
            self._resample(tf)
            columns = self._columns[tf]
        value = columns.get(name)
        if value is None and self._candles is not None and tf == self.timeframe:
            value = columns[name] = self._candles[name].to_numpy(dtype=np.float64)
        if value is None:
            raise KeyError(name)
        return value

    def column(self, tf: str, name: str) -> np.ndarray:
        return _column(lambda c: self._read(tf, c), name)

    def _resample(self, tf: str) -> None:
        base = self.timeframe
        columns = {name: self._read(base, name) for name in CANDLE_COLUMNS}
        self._times[tf], self._columns[tf] = _resample_arrays(self.times(base), columns, tf)

    def index(self, tf: str) -> pd.DatetimeIndex:
        frame = self._frames.get(tf)
        if frame is not None:
            return frame.index
        index = self._indexes.get(tf)
        if index is None:
            index = self._indexes[tf] = pd.DatetimeIndex(self.times(tf), tz="UTC", name="date").as_unit("ns")
        return index

    def frame(self, tf: str) -> pd.DataFrame:
        frame = self._frames.get(tf)
        if frame is None:
            if tf != self.timeframe:
                self.times(tf)  # aggregates the columns too
            columns = self._columns[tf]
            frame = pd.DataFrame(
                {name: columns[name] for name in CANDLE_COLUMNS if name in columns}, index=self.index(tf)
            )
            self._frames[tf] = frame
        return frame

    def alignment(self, source: str, target: str) -> tuple[np.ndarray, np.ndarray | None]:
        """For each ``target`` candle, the last ``source`` candle closed by its close, and where there
        is none yet (or None when every target candle has one)."""
        key = (source, target)
        found = self._alignments.get(key)
        if found is None:
            source_close = self.times(source) + timeframe_seconds(source) * _NS
            target_close = self.times(target) + timeframe_seconds(target) * _NS
            position = np.searchsorted(source_close, target_close, side="right") - 1
            missing = position < 0
            found = self._alignments[key] = (np.maximum(position, 0), missing if missing.any() else None)
        return found


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


def _column(read: Any, name: str) -> np.ndarray:
    if name in CANDLE_COLUMNS:
        return read(name)
    high, low, close = (read(c) for c in ("high", "low", "close"))
    if name == "hl2":
        return (high + low) / 2
    if name == "hlc3":
        return (high + low + close) / 3
    return (read("open") + high + low + close) / 4


def _shift(value: Any, bars: int) -> Any:
    if np.ndim(value) == 0 or bars == 0:
        return value
    out = np.empty_like(value)
    out[:bars] = False if value.dtype == bool else np.nan
    out[bars:] = value[:-bars] if bars < len(value) else value[:0]
    return out


def _open_ns(frame: pd.DataFrame) -> np.ndarray:
    return frame.index.as_unit("ns").asi8


def _align(value: Any, position: np.ndarray, missing: np.ndarray | None) -> Any:
    """Carry a series to another timeframe's candles (``_Frames.alignment``): no look-ahead."""
    if np.ndim(value) == 0:
        return value
    out = value[position]
    if missing is not None:
        out[missing] = False if value.dtype == bool else np.nan
    return out


def resample_candles(candles: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Aggregate candles into ``timeframe`` buckets (UTC, weeks from Monday); the last bucket may be partial."""
    if len(candles) == 0:
        return candles.iloc[:0]
    columns = {name: candles[name].to_numpy(dtype=np.float64) for name in CANDLE_COLUMNS}
    times, columns = _resample_arrays(_open_ns(candles), columns, timeframe)
    return pd.DataFrame(columns, index=pd.DatetimeIndex(times, tz="UTC", name="date").as_unit("ns"))


def _resample_arrays(
    opens: np.ndarray, columns: Mapping[str, np.ndarray], timeframe: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`resample_candles` on arrays: (bucket open times in ns, aggregated columns)."""
    if len(opens) == 0:
        return opens[:0], {name: columns[name][:0] for name in CANDLE_COLUMNS}
    step = timeframe_seconds(timeframe) * _NS
    origin = _WEEK_ORIGIN_NS if timeframe == "1w" else 0
    buckets = (opens - origin) // step
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(buckets)] - 1
    aggregated = {
        "open": columns["open"][starts],
        "high": np.maximum.reduceat(columns["high"], starts),
        "low": np.minimum.reduceat(columns["low"], starts),
        "close": columns["close"][ends],
        "volume": np.add.reduceat(columns["volume"], starts),
    }
    return buckets[starts] * step + origin, aggregated


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
