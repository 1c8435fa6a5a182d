"""Expression nodes: frozen dataclasses, each with the span it came from.

Spans are excluded from equality so that a tree printed with :func:`to_source` and parsed again
compares equal to the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsl.errors import Span

__all__ = [
    "AtTimeframe",
    "Binary",
    "BoolLiteral",
    "Call",
    "Compare",
    "Duration",
    "Expr",
    "History",
    "Keyword",
    "Logical",
    "Member",
    "Name",
    "Negate",
    "Not",
    "Number",
    "Percent",
    "String",
    "children",
    "to_source",
]

_NO_SPAN = Span("<expr>", 1, 1, 1, 1)


@dataclass(frozen=True, slots=True)
class Number:
    value: int | float
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Percent:
    """``1.5%``: ``value`` is the written number (1.5); the expression's value is value / 100."""

    value: int | float
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Duration:
    """``30m``, ``4h``: usable as a timeframe after ``@`` or as a bar count (converted per timeframe)."""

    text: str
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class String:
    value: str
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BoolLiteral:
    value: bool
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Keyword:
    name: str
    value: Expr
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    keywords: tuple[Keyword, ...] = ()
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)
    name_span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Member:
    value: Expr
    attr: str
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)
    attr_span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class History:
    """``value[offset]``: the value ``offset`` candles ago (of the value's own timeframe)."""

    value: Expr
    offset: Expr
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AtTimeframe:
    value: Expr
    timeframe: str
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)
    timeframe_span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Expr
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * /
    left: Expr
    right: Expr
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # < <= > >= == !=
    left: Expr
    right: Expr
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Logical:
    op: str  # and, or
    left: Expr
    right: Expr
    span: Span = field(default=_NO_SPAN, compare=False, repr=False)


Expr = (
    Number
    | Percent
    | Duration
    | String
    | BoolLiteral
    | Name
    | Call
    | Member
    | History
    | AtTimeframe
    | Negate
    | Not
    | Binary
    | Compare
    | Logical
)


def children(node: Expr) -> tuple[Expr, ...]:
    match node:
        case Call():
            return (*node.args, *(k.value for k in node.keywords))
        case Member() | AtTimeframe():
            return (node.value,)
        case History():
            return (node.value, node.offset)
        case Negate() | Not():
            return (node.operand,)
        case Binary() | Compare() | Logical():
            return (node.left, node.right)
        case _:
            return ()


# Binding strength used by the printer; must mirror dsl/grammar.lark.
_OR, _AND, _NOT, _CMP, _SUM, _PRODUCT, _UNARY, _POSTFIX, _ATOM = range(9)


def _precedence(node: Expr) -> int:
    match node:
        case Logical(op="or"):
            return _OR
        case Logical():
            return _AND
        case Not():
            return _NOT
        case Compare():
            return _CMP
        case Binary(op="+" | "-"):
            return _SUM
        case Binary():
            return _PRODUCT
        case Negate():
            return _UNARY
        case Member() | History() | AtTimeframe():
            return _POSTFIX
        case _:
            return _ATOM


def _format_number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    return text


def to_source(node: Expr) -> str:
    """Print an expression back to DSL text with the fewest parentheses that keep its structure."""

    def wrap(child: Expr, minimum: int) -> str:
        text = to_source(child)
        return f"({text})" if _precedence(child) < minimum else text

    match node:
        case Number(value=value):
            return _format_number(value)
        case Percent(value=value):
            return f"{_format_number(value)}%"
        case Duration(text=text):
            return text
        case String(value=value):
            quote = "'" if '"' in value else '"'
            return f"{quote}{value}{quote}"
        case BoolLiteral(value=value):
            return "true" if value else "false"
        case Name(id=name):
            return name
        case Call(func=func, args=args, keywords=keywords):
            parts = [to_source(a) for a in args] + [f"{k.name}={to_source(k.value)}" for k in keywords]
            return f"{func}({', '.join(parts)})"
        case Member(value=value, attr=attr):
            return f"{wrap(value, _POSTFIX)}.{attr}"
        case History(value=value, offset=offset):
            return f"{wrap(value, _POSTFIX)}[{to_source(offset)}]"
        case AtTimeframe(value=value, timeframe=timeframe):
            return f"{wrap(value, _POSTFIX)}@{timeframe}"
        case Negate(operand=operand):
            return f"-{wrap(operand, _UNARY)}"
        case Not(operand=operand):
            return f"not {wrap(operand, _NOT)}"
        case Binary(op=op, left=left, right=right):
            level = _precedence(node)
            return f"{wrap(left, level)} {op} {wrap(right, level + 1)}"
        case Compare(op=op, left=left, right=right):
            return f"{wrap(left, _SUM)} {op} {wrap(right, _SUM)}"
        case Logical(op=op, left=left, right=right):
            level = _precedence(node)
            return f"{wrap(left, level)} {op} {wrap(right, level + 1)}"
    raise TypeError(f"not an expression node: {node!r}")
