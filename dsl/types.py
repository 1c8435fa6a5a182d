"""The DSL's types: a value kind (number, bool, string) and whether it varies per candle (a series).

A constant may be used wherever a series of the same kind is expected (it is broadcast); a series
can never be used where a constant is required (window lengths, pattern names, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "BOOL",
    "BOOL_CONST",
    "NUMBER",
    "NUMBER_CONST",
    "STRING_CONST",
    "Kind",
    "Type",
]


class Kind(StrEnum):
    NUMBER = "number"
    BOOL = "bool"
    STRING = "string"


@dataclass(frozen=True, slots=True)
class Type:
    kind: Kind
    series: bool

    def accepts(self, actual: Type) -> bool:
        """Whether a value of type ``actual`` may be passed where ``self`` is expected."""
        if self.kind is not actual.kind:
            return False
        return self.series or not actual.series

    def __str__(self) -> str:
        return f"series of {self.kind}" if self.series else f"constant {self.kind}"


NUMBER = Type(Kind.NUMBER, True)
BOOL = Type(Kind.BOOL, True)
NUMBER_CONST = Type(Kind.NUMBER, False)
BOOL_CONST = Type(Kind.BOOL, False)
STRING_CONST = Type(Kind.STRING, False)
