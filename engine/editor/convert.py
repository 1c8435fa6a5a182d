"""AST <-> blocks. Every expression the DSL can write maps to blocks and back to an equal AST:
constructs without a dedicated block become :class:`RawExpr` text, so nothing is lost."""

from __future__ import annotations

import re
from collections.abc import Collection

from dsl import ast
from dsl.parser import parse_expression
from engine.editor import blocks as b

__all__ = ["block_to_expr", "block_to_text", "expr_to_block", "text_to_block"]

_DURATION = re.compile(r"^\d+[smhdw]$")
_CROSSES = {"crosses_above": "above", "crosses_below": "below"}
_GROUP_OP = {"all": "and", "any": "or"}
_GROUP_MODE = {"and": "all", "or": "any"}


def text_to_block(text: str, inputs: Collection[str] = ()) -> b.Block:
    """Parse DSL text into blocks; raises :class:`dsl.DiagnosticError` on a syntax error.

    Names in ``inputs`` become :class:`Input` blocks, other names :class:`Series` blocks.
    """
    return expr_to_block(parse_expression(text), inputs)


def block_to_text(block: b.Block) -> str:
    """DSL text of a block tree, with the fewest parentheses that keep its structure."""
    return ast.to_source(block_to_expr(block))


# ----- AST -> blocks ----------------------------------------------------------------------------------
def expr_to_block(expr: ast.Expr, inputs: Collection[str] = ()) -> b.Block:
    def go(node: ast.Expr) -> b.Block:
        return expr_to_block(node, inputs)

    match expr:
        case ast.Number(value=value):
            return b.Number(value=value)
        case ast.Percent(value=value):
            return b.Number(value=value, percent=True)
        case ast.Duration(text=text):
            return b.Duration(text=text)
        case ast.String(value=value):
            return b.Text(value=value)
        case ast.BoolLiteral(value=value):
            return b.Flag(value=value)
        case ast.Name(id=name) if name in inputs:
            return b.Input(name=name)
        case ast.Negate(operand=operand):
            return b.Neg(operand=go(operand))
        case ast.Not(operand=operand):
            return b.Not(operand=go(operand))
        case ast.Binary(op=op, left=left, right=right):
            return b.Arith(op=op, left=go(left), right=go(right))  # type: ignore[arg-type]
        case ast.Compare(op=op, left=left, right=right):
            return b.Compare(op=op, left=go(left), right=go(right))  # type: ignore[arg-type]
        case ast.Logical(op=op):
            return b.Group(mode=_GROUP_MODE[op], items=tuple(go(item) for item in _left_spine(expr)))  # type: ignore[arg-type]
        case ast.Call(func=func, args=(first, second), keywords=()) if func in _CROSSES:
            return b.Cross(direction=_CROSSES[func], a=go(first), b=go(second))  # type: ignore[arg-type]
    postfix = _postfix_block(expr, inputs)
    return postfix if postfix is not None else b.RawExpr(text=ast.to_source(expr))


def _left_spine(expr: ast.Logical) -> list[ast.Expr]:
    """``a and b and c`` parses as ((a and b) and c): its items are the left spine of one operator.
    A right operand of the same operator (``a and (b and c)``) stays a nested group, so that the
    blocks print back to the same tree."""
    items: list[ast.Expr] = []
    node: ast.Expr = expr
    while isinstance(node, ast.Logical) and node.op == expr.op:
        items.append(node.right)
        node = node.left
    items.append(node)
    return items[::-1]


def _postfix_block(expr: ast.Expr, inputs: Collection[str]) -> b.Block | None:
    """``base.member@tf[n]`` (each part optional, in that order) as a Series or Indicator block."""
    node = expr
    lookback: int | str | None = None
    timeframe: str | None = None
    if isinstance(node, ast.History):
        offset = node.offset
        if isinstance(offset, ast.Number) and isinstance(offset.value, int):
            lookback = offset.value
        elif isinstance(offset, ast.Duration):
            lookback = offset.text
        elif isinstance(offset, ast.Name) and not _DURATION.match(offset.id):
            lookback = offset.id
        else:
            return None
        node = node.value
    if isinstance(node, ast.AtTimeframe):
        timeframe = node.timeframe
        node = node.value
    path = _dotted(node)
    if path is not None:
        if path in inputs and timeframe is None and lookback is None:
            return b.Input(name=path)
        return b.Series(name=path, timeframe=timeframe, lookback=lookback)
    member: str | None = None
    if isinstance(node, ast.Member) and isinstance(node.value, ast.Call):
        member = node.attr
        node = node.value
    if not isinstance(node, ast.Call):
        return None
    if member is None and timeframe is None and lookback is None and node.func in _CROSSES:
        return None  # a cross with the wrong arity: kept as text so the checker reports it
    return b.Indicator(
        name=node.func,
        args=tuple(expr_to_block(a, inputs) for a in node.args),
        keywords={k.name: expr_to_block(k.value, inputs) for k in node.keywords},
        member=member,
        timeframe=timeframe,
        lookback=lookback,
    )


def _dotted(node: ast.Expr) -> str | None:
    """``sentiment.score`` -> "sentiment.score"; None unless the node is a name with member accesses."""
    attrs: list[str] = []
    while isinstance(node, ast.Member):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(attrs)])


# ----- blocks -> AST ----------------------------------------------------------------------------------
def block_to_expr(block: b.Block) -> ast.Expr:
    """The AST of a block tree; a RawExpr's text is parsed (a syntax error in it raises DiagnosticError)."""
    match block:
        case b.Number(value=value, percent=True):
            return ast.Percent(value)
        case b.Number(value=value):
            return ast.Number(value)
        case b.Duration(text=text):
            return ast.Duration(text)
        case b.Text(value=value):
            return ast.String(value)
        case b.Flag(value=value):
            return ast.BoolLiteral(value)
        case b.Input(name=name):
            return ast.Name(name)
        case b.Series(name=name, timeframe=timeframe, lookback=lookback):
            first, *attrs = name.split(".")
            node: ast.Expr = ast.Name(first)
            for attr in attrs:
                node = ast.Member(node, attr)
            return _decorate(node, timeframe, lookback)
        case b.Indicator():
            call: ast.Expr = ast.Call(
                block.name,
                tuple(block_to_expr(a) for a in block.args),
                tuple(ast.Keyword(k, block_to_expr(v)) for k, v in block.keywords.items()),
            )
            if block.member is not None:
                call = ast.Member(call, block.member)
            return _decorate(call, block.timeframe, block.lookback)
        case b.Neg(operand=operand):
            return ast.Negate(block_to_expr(operand))
        case b.Not(operand=operand):
            return ast.Not(block_to_expr(operand))
        case b.Arith(op=op, left=left, right=right):
            return ast.Binary(op, block_to_expr(left), block_to_expr(right))
        case b.Compare(op=op, left=left, right=right):
            return ast.Compare(op, block_to_expr(left), block_to_expr(right))
        case b.Cross(direction=direction, a=first, b=second):
            return ast.Call(f"crosses_{direction}", (block_to_expr(first), block_to_expr(second)))
        case b.Group(mode=mode, items=items):
            result = block_to_expr(items[0])
            for item in items[1:]:
                result = ast.Logical(_GROUP_OP[mode], result, block_to_expr(item))
            return result
        case b.RawExpr(text=text):
            return parse_expression(text)
    raise TypeError(f"not a block: {block!r}")


def _decorate(node: ast.Expr, timeframe: str | None, lookback: int | str | None) -> ast.Expr:
    if timeframe is not None:
        node = ast.AtTimeframe(node, timeframe)
    if lookback is None:
        return node
    if isinstance(lookback, int):
        offset: ast.Expr = ast.Number(lookback)
    elif _DURATION.match(lookback):
        offset = ast.Duration(lookback)
    else:
        offset = ast.Name(lookback)
    return ast.History(node, offset)
