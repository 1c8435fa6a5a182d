"""Signatures of everything a rule can call or read, and the implementations behind them.

``dsl/`` knows names, parameters, types and warm-up lengths; the implementations are plain
functions that ``engine/`` registers (indicators, patterns, ML predictions, sentiment feeds).

Calling convention for implementations (``FunctionSpec.impl``): keyword arguments named after the
parameters; series arrive as ``pandas.Series`` on the candle index (float64 for numbers, bool for
conditions), constants as Python ``int``/``float``/``str``/``bool``. The result is a ``pandas.Series``
(single output) or a ``pandas.DataFrame`` whose columns are exactly the declared outputs. The
value at candle *t* may depend only on inputs at candles <= *t*: implementations must never look ahead.

Array-native implementations (``FunctionSpec.arrays``, registered with ``arrays=True``) skip pandas:
series arrive as 1-D ``numpy`` arrays of equal length (float64 for numbers, bool for conditions) and
the result is a 1-D array (single output) or a ``dict`` mapping every declared output name, in the
declared order, to a 1-D array. The plan evaluator calls them that way; the live hot path depends on
it (a Series costs more to build than TA-Lib takes to compute an EMA over a thousand candles).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dsl.errors import did_you_mean
from dsl.types import Type

__all__ = [
    "REQUIRED",
    "Column",
    "FeedSpec",
    "FunctionSpec",
    "Param",
    "Registry",
]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True, slots=True)
class Column:
    """A parameter default that reads a candle column (``high=high`` in ``atr(14)``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: Type
    default: Any = REQUIRED
    integer: bool = False
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    keyword_only: bool = False
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def _no_warmup(_args: Mapping[str, Any]) -> int:
    return 0


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A callable DSL function: its parameters, result type(s) and implementation."""

    name: str
    params: tuple[Param, ...]
    returns: Type | Mapping[str, Type]
    impl: Callable[..., Any]
    # Called with the constant arguments, plus "_timeframe": the timeframe the call runs on.
    warmup: Callable[[Mapping[str, Any]], int] = _no_warmup
    category: str = "misc"
    doc: str = ""
    example: str = ""
    # For multi-output functions: the output used when no member is named (``macd(close) > 0``).
    default_output: str | None = None
    # True: ``impl`` takes and returns numpy arrays (see the module docstring).
    arrays: bool = False

    @property
    def outputs(self) -> Mapping[str, Type] | None:
        return self.returns if isinstance(self.returns, Mapping) else None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def signature(self) -> str:
        parts = []
        for p in self.params:
            if p.required:
                parts.append(p.name)
            else:
                default = p.default.name if isinstance(p.default, Column) else repr(p.default)
                parts.append(f"{p.name}={default}")
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """A namespace of external series read by member access: ``sentiment.score``, ``ml.trend.up``.

    ``resolve(path)`` returns the type of ``<name>.<path...>`` or raises ``KeyError`` with a message;
    ``impl(path, context)`` returns the series for the candles in ``context``. ``prepare(paths)``, when
    given, loads ahead what evaluating those member paths first would load (a running engine calls it
    in a worker thread as a bot starts, so the first candle close does not pay for it).
    """

    name: str
    resolve: Callable[[tuple[str, ...]], Type]
    impl: Callable[[tuple[str, ...], Any], Any]
    members: Callable[[], Iterable[str]] = lambda: ()
    warmup: int = 0
    doc: str = ""
    example: str = ""
    prepare: Callable[[tuple[tuple[str, ...], ...]], None] | None = None


@dataclass
class Registry:
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    feeds: dict[str, FeedSpec] = field(default_factory=dict)

    def add(self, spec: FunctionSpec) -> FunctionSpec:
        if spec.name in self.functions:
            raise ValueError(f"function '{spec.name}' is registered twice")
        self.functions[spec.name] = spec
        return spec

    def add_feed(self, spec: FeedSpec) -> FeedSpec:
        if spec.name in self.feeds:
            raise ValueError(f"feed '{spec.name}' is registered twice")
        self.feeds[spec.name] = spec
        return spec

    def function(
        self,
        name: str,
        params: Iterable[Param],
        returns: Type | Mapping[str, Type],
        *,
        warmup: Callable[[Mapping[str, Any]], int] = _no_warmup,
        category: str = "misc",
        example: str = "",
        default_output: str | None = None,
        arrays: bool = False,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register the decorated function; its docstring becomes the reference text."""

        def register(impl: Callable[..., Any]) -> Callable[..., Any]:
            self.add(
                FunctionSpec(
                    name=name,
                    params=tuple(params),
                    returns=returns,
                    impl=impl,
                    warmup=warmup,
                    category=category,
                    doc=(impl.__doc__ or "").strip(),
                    example=example,
                    default_output=default_output,
                    arrays=arrays,
                )
            )
            return impl

        return register

    def lookup(self, name: str) -> FunctionSpec | None:
        return self.functions.get(name)

    def suggest(self, name: str) -> str:
        return did_you_mean(name, self.functions)
