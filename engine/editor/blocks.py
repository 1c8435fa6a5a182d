"""The editor's block model: a rule as a tree of typed blocks a visual editor can show and change.

Every block is a frozen pydantic model tagged by ``kind``, so a tree travels as plain JSON between the
browser and the server. Blocks say what a rule *means* (an indicator with its parameters, a
comparison, a cross, an all/any group); :mod:`engine.editor.convert` maps them to and from the DSL's
AST. Anything without a dedicated block is kept as a :class:`RawExpr` holding DSL text, so a rule
never loses a construct on its way through the editor.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Arith",
    "Block",
    "Compare",
    "Cross",
    "Duration",
    "Flag",
    "Group",
    "Indicator",
    "Input",
    "Neg",
    "Not",
    "Number",
    "RawExpr",
    "Series",
    "Text",
]

# Candles ago: a whole number, a duration ("1h") or an input's name ("decline_bars").
Lookback = (
    Annotated[int, Field(ge=0)] | Annotated[str, Field(pattern=r"^(\d+[smhdw]|[A-Za-z_][A-Za-z0-9_]*)$")]
)


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Number(_Block):
    """A number literal; ``percent`` writes it as ``value%`` (``1.5%`` is 0.015)."""

    kind: Literal["number"] = "number"
    value: int | float = Field(ge=0, allow_inf_nan=False)
    percent: bool = False

    @model_validator(mode="after")
    def _writable(self) -> Number:
        # The DSL writes a percentage as plain digits (`0.05%`), never with an exponent.
        if self.percent and isinstance(self.value, float) and "e" in repr(self.value):
            raise ValueError(f"{self.value}% cannot be written as a percentage; use a plain number")
        return self


class Duration(_Block):
    """A duration literal used as a length (``highest(high, 1d)``)."""

    kind: Literal["duration"] = "duration"
    text: str = Field(pattern=r"^\d+[smhdw]$")


class Text(_Block):
    """A string argument such as a pattern name."""

    kind: Literal["string"] = "string"
    value: str = Field(pattern=r"^[^\n\\]*$")

    @model_validator(mode="after")
    def _quotable(self) -> Text:
        if "'" in self.value and '"' in self.value:
            raise ValueError("a string cannot contain both ' and \"")
        return self


class Flag(_Block):
    """``true`` or ``false``."""

    kind: Literal["bool"] = "bool"
    value: bool


class Input(_Block):
    """A reference to one of the strategy's inputs (a tunable constant)."""

    kind: Literal["input"] = "input"
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class Series(_Block):
    """A named series: a candle column, a feature or a feed (dotted, ``sentiment.score``), optionally on
    another ``timeframe`` and ``lookback`` candles ago (None: the current candle) (``close@1h[3]``)."""

    kind: Literal["series"] = "series"
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
    timeframe: str | None = None
    lookback: Lookback | None = None


class Indicator(_Block):
    """A function call with its arguments, an optional output ``member`` (``bbands(...).upper``), an
    optional ``timeframe`` and a ``lookback``: ``name(args, key=value).member@timeframe[lookback]``."""

    kind: Literal["indicator"] = "indicator"
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    args: tuple[Block, ...] = ()
    keywords: dict[str, Block] = Field(default_factory=dict)
    member: str | None = None
    timeframe: str | None = None
    lookback: Lookback | None = None


class Neg(_Block):
    kind: Literal["neg"] = "neg"
    operand: Block


class Arith(_Block):
    kind: Literal["arith"] = "arith"
    op: Literal["+", "-", "*", "/"]
    left: Block
    right: Block


class Compare(_Block):
    kind: Literal["compare"] = "compare"
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    left: Block
    right: Block


class Cross(_Block):
    """``crosses_above(a, b)`` / ``crosses_below(a, b)``: true on the candle where ``a`` crosses ``b``."""

    kind: Literal["cross"] = "cross"
    direction: Literal["above", "below"]
    a: Block
    b: Block


class Group(_Block):
    """``all``: every item holds (and); ``any``: at least one holds (or)."""

    kind: Literal["group"] = "group"
    mode: Literal["all", "any"]
    items: tuple[Block, ...] = Field(min_length=1)


class Not(_Block):
    kind: Literal["not"] = "not"
    operand: Block


class RawExpr(_Block):
    """DSL text for a construct without a dedicated block (``(a > b)@4h``, ``x[1]@1h``, ...)."""

    kind: Literal["raw"] = "raw"
    text: str = Field(min_length=1)


Block = Annotated[
    Number
    | Duration
    | Text
    | Flag
    | Input
    | Series
    | Indicator
    | Neg
    | Arith
    | Compare
    | Cross
    | Group
    | Not
    | RawExpr,
    Field(discriminator="kind"),
]

for _model in (Indicator, Neg, Arith, Compare, Cross, Group, Not):
    _model.model_rebuild()
