"""Every other pandas-ta indicator, registered from the table ``_pandas_ta_scan`` generates.

The table holds what introspection found (parameters with their real defaults, clean output names,
measured warm-up); this module turns each entry into a FunctionSpec whose implementation calls
pandas-ta (TA-Lib underneath where pandas-ta uses it). Nothing here runs an indicator.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dsl.registry import Column, FunctionSpec, Param, Registry
from dsl.types import BOOL, BOOL_CONST, NUMBER, NUMBER_CONST, STRING_CONST, Type
from engine.indicators._core import as_bool, as_float, by_segments

# SKIPPED: the pandas-ta functions not registered, each with its reason (look-ahead, covered by a
# curated function, ...); TABLE: what the scanner found for the others.
from engine.indicators._pandas_ta_table import SKIPPED, TABLE

__all__ = ["SKIPPED", "register_pandas_ta"]

_COLUMN = {"open_": "open", "high": "high", "low": "low", "close": "close", "volume": "volume"}


def register_pandas_ta(registry: Registry) -> None:
    for name, entry in TABLE.items():
        if registry.lookup(name) is None:
            registry.add(build_spec(name, entry))


def _source_input(entry: Mapping[str, Any]) -> str | None:
    """The pandas-ta input that becomes the positional ``source`` (``zlma(close, 10)``), if any."""
    inputs = entry["inputs"]
    return inputs[0] if len(inputs) == 1 and not entry["series"] else None


def build_spec(name: str, entry: Mapping[str, Any]) -> FunctionSpec:
    source = _source_input(entry)
    params: list[Param] = []
    inputs: dict[str, str] = {}  # DSL parameter -> pandas-ta argument
    if source is not None:
        params.append(Param("source", NUMBER, doc=f"the series to use (pandas-ta's {_COLUMN[source]})"))
        inputs["source"] = source
    for extra in entry["series"]:
        params.append(Param(extra, NUMBER))
        inputs[extra] = extra
    constants = [_constant(p) for p in entry["params"]]
    params.extend(constants)
    warmup = _Warmup(entry, constants)
    if source is None:
        for arg in entry["inputs"]:
            column = _COLUMN[arg]
            params.append(
                Param(
                    column,
                    NUMBER,
                    default=Column(column),
                    keyword_only=True,
                    doc=f"{column} (default: candles)",
                )
            )
            inputs[column] = arg
    outputs = tuple(entry["outputs"])
    kinds = tuple(entry["kinds"])
    returns: Type | dict[str, Type]
    if len(outputs) == 1:
        returns = BOOL if kinds[0] == "bool" else NUMBER
    else:
        returns = {o: BOOL if k == "bool" else NUMBER for o, k in zip(outputs, kinds, strict=True)}
    return FunctionSpec(
        name=name,
        params=tuple(params),
        returns=returns,
        impl=_Impl(name, inputs, entry, warmup),
        warmup=warmup,
        category=entry["category"],
        doc=_doc(name, entry),
        example=_example(name, entry, source),
        default_output=outputs[0] if len(outputs) > 1 else None,
    )


# What the recurring pandas-ta parameters mean (the others are specific to one indicator).
_PARAM_DOCS = {
    "length": "window length in candles",
    "fast": "fast window length",
    "slow": "slow window length",
    "signal": "signal line length",
    "mamode": "the moving average used inside",
    "drift": "candles between the values compared (difference period)",
    "scalar": "the result is multiplied by this",
    "atr_length": "ATR length",
    "multiplier": "band distance multiplier",
    "ddof": "delta degrees of freedom of the standard deviation (0: population, 1: sample)",
}


def _constant(p: Mapping[str, Any]) -> Param:
    kind, doc = p["type"], _PARAM_DOCS.get(p["name"], "")
    if kind == "bool":
        return Param(p["name"], BOOL_CONST, default=p["default"], doc=doc)
    if kind == "str":
        return Param(p["name"], STRING_CONST, default=p["default"], choices=tuple(p["choices"]), doc=doc)
    return Param(
        p["name"],
        NUMBER_CONST,
        default=p["default"],
        integer=kind == "int",
        min=p.get("min"),
        max=p.get("max"),
        doc=doc,
    )


class _Warmup:
    """Measured warm-up at the default lengths, scaled by the largest ratio of a given length to its
    default (a sum of windows and smoothings grows at most that much), taking the slowest variant of
    any mode or flag given."""

    def __init__(self, entry: Mapping[str, Any], constants: list[Param]) -> None:
        self.unit = int(entry["warmup"])
        self.lengths = dict(entry["lengths"])
        self.variants = dict(entry["variants"])
        self.defaults = {p.name: p.default for p in constants}

    def __call__(self, args: Mapping[str, Any]) -> int:
        values = {**self.defaults, **args}
        unit = self.unit
        for key, bars in self.variants.items():
            param, _, value = key.partition("=")
            if str(values.get(param)) == value:
                unit = max(unit, int(bars))
        ratio = max((float(values[k]) / d for k, d in self.lengths.items() if d), default=1.0)
        return math.ceil(unit * ratio)


class _Impl:
    """Calls pandas-ta ``name`` on each finite run of the inputs and renames its columns."""

    def __init__(
        self, name: str, inputs: Mapping[str, str], entry: Mapping[str, Any], warmup: _Warmup
    ) -> None:
        self.name = name
        self.warmup = warmup
        self.inputs = dict(inputs)
        self.types = {p["name"]: p["type"] for p in entry["params"]}
        self.fixed = dict(entry["fixed"])
        self.outputs = tuple(entry["outputs"])
        self.kinds = tuple(entry["kinds"])
        self.__doc__ = _doc(name, entry)

    def __call__(self, **kwargs: Any) -> pd.Series | pd.DataFrame:
        fn = getattr(_pandas_ta(), self.name)
        series = {self.inputs[k]: v for k, v in kwargs.items() if k in self.inputs}
        index = next(iter(series.values())).index
        constants = dict(self.fixed)
        for key, value in kwargs.items():
            kind = self.types.get(key)
            if kind == "int":
                value = int(value)
            elif kind == "float":
                value = float(value)
            if kind is not None:
                constants[key] = value
        width = len(self.outputs)
        # Some pandas-ta functions fail (or drop a column) on histories shorter than their windows; such a
        # run has no settled value anyway, so it is left undefined rather than turned into an error.
        unsettled = self.warmup({k: v for k, v in kwargs.items() if k in self.types})

        def compute(**parts: pd.Series) -> np.ndarray | None:
            short = len(next(iter(parts.values()))) <= unsettled
            try:
                result = fn(**parts, **constants)
            except Exception:
                if short:
                    return None
                raise
            if result is None:  # pandas-ta returns nothing when the run is shorter than its window
                return None
            frame = result.to_frame() if isinstance(result, pd.Series) else result
            if frame.shape[1] != width and short:
                return None
            if frame.shape[1] != width:
                raise RuntimeError(
                    f"pandas-ta {self.name}() returned {frame.shape[1]} columns, expected {width}: "
                    "regenerate the table (python -m engine.indicators._pandas_ta_scan)"
                )
            return frame.to_numpy(dtype=np.float64, na_value=np.nan)

        values = by_segments(compute, series, index, None if width == 1 else list(self.outputs))
        if width == 1:
            return as_bool(values, index) if self.kinds[0] == "bool" else as_float(values, index)
        return pd.DataFrame(
            {
                o: as_bool(values[o], index) if k == "bool" else as_float(values[o], index)
                for o, k in zip(self.outputs, self.kinds, strict=True)
            },
            index=index,
        )


@functools.cache
def _pandas_ta() -> Any:
    # pandas-ta trips pandas deprecation warnings while importing; they are its business, not the user's.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pandas_ta

    return pandas_ta


def _doc(name: str, entry: Mapping[str, Any]) -> str:
    parts = [f"{entry['title']} (pandas-ta `{name}`)."]
    if len(entry["outputs"]) > 1:
        parts.append(f"Outputs: {', '.join(entry['outputs'])}.")
    if entry["fixed"]:
        fixed = ", ".join(f"{k}={v!r}" for k, v in entry["fixed"].items())
        parts.append(f"Fixed: {fixed} (the alternative looks ahead).")
    if entry["cumulative"]:
        parts.append(
            "Cumulative: its level depends on where the data starts; compare it with its own past values."
        )
    else:
        parts.append(
            f"Warm-up measured on real candles: {entry['warmup']} at the default lengths, "
            "scaled with the longest length."
        )
    return " ".join(parts)


def _example(name: str, entry: Mapping[str, Any], source: str | None) -> str:
    args: list[str] = []
    if source is not None:
        args.append(_COLUMN[source])
    if entry["series"]:
        args.extend(f"ema(close, {n})" for n in (10, 20)[: len(entry["series"])])
    positional = entry["params"][:1]
    for p in positional:
        if p["type"] in ("int", "float"):
            args.append(repr(p["default"]))
    call = f"{name}({', '.join(args)})"
    outputs = entry["outputs"]
    return f"{call}.{outputs[0]}" if len(outputs) > 1 else call
