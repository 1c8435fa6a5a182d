from __future__ import annotations

import pytest

from dsl import DiagnosticError, Source, parse_expression, to_source
from dsl.ast import (
    AtTimeframe,
    Call,
    Compare,
    History,
    Keyword,
    Logical,
    Member,
    Name,
    Negate,
    Number,
    Percent,
)


def parse_error(text: str, segments=((0, 3, 9),)) -> str:
    with pytest.raises(DiagnosticError) as caught:
        parse_expression(Source(text, "s.yaml", segments))
    assert len(caught.value.diagnostics) == 1
    return caught.value.diagnostics[0].headline()


def test_precedence_and_structure():
    expr = parse_expression("crosses_above(ema(close, 12), ema(close, 26)) and rsi(close, 14) < 70 or not x")
    assert isinstance(expr, Logical) and expr.op == "or"
    left = expr.left
    assert isinstance(left, Logical) and left.op == "and"
    assert left.right == Compare("<", Call("rsi", (Name("close"), Number(14))), Number(70))


def test_postfix_literals_and_keywords():
    expr = parse_expression("macd(close, fast=8).signal@4h[2] > -1.5% * atr(14)")
    assert isinstance(expr, Compare)
    history = expr.left
    assert isinstance(history, History) and history.offset == Number(2)
    at = history.value
    assert isinstance(at, AtTimeframe) and at.timeframe == "4h"
    member = at.value
    assert isinstance(member, Member) and member.attr == "signal"
    assert member.value == Call("macd", (Name("close"),), (Keyword("fast", Number(8)),))
    assert expr.right.left == Negate(Percent(1.5))


def test_keywords_are_reserved_but_prefixes_are_names():
    expr = parse_expression("android and notx or truex")
    assert expr.left.left == Name("android")
    assert "unexpected 'and'" in parse_error("and b")


def test_spans_map_into_the_file():
    expr = parse_expression(Source("ema(close, 12) > slow", "s.yaml", ((0, 7, 11),)))
    assert (expr.span.line, expr.span.col, expr.span.end_col) == (7, 11, 32)
    assert (expr.left.name_span.col, expr.left.name_span.end_col) == (11, 14)
    assert expr.right.span.col == 28


def test_spans_across_block_scalar_lines():
    text = "crosses_above(a, b)\nand c > 1"
    expr = parse_expression(Source(text, "s.yaml", ((0, 10, 5), (20, 11, 5))))
    assert (expr.right.span.line, expr.right.span.col) == (11, 9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a < b < c", "s.yaml:3:15: error[DSL001]: comparisons do not chain"),
        ("rsi(close, 14", "s.yaml:3:22: error[DSL001]: unexpected end of expression, expected ')' or ','"),
        ("a = b", "s.yaml:3:11: error[DSL001]: unexpected '=', did you mean '==' (a comparison)?"),
        ("a $ b", "s.yaml:3:11: error[DSL001]: unexpected character '$'"),
        ("", "s.yaml:3:9: error[DSL001]: empty expression"),
        ("close@", "s.yaml:3:15: error[DSL001]: unexpected end of expression, expected a duration like 1h"),
        (
            "1 +",
            "s.yaml:3:12: error[DSL001]: unexpected end of expression, expected a value (number, name, call or '(')",
        ),
    ],
)
def test_syntax_errors_point_at_the_column(text, expected):
    assert parse_error(text).startswith(expected)


def test_pathological_input_is_refused_cleanly():
    assert "DSL007" in parse_error("(" * 60 + "1" + ")" * 60)
    assert "DSL007" in parse_error("1" + "+1" * 300)
    assert "DSL007" in parse_error("1" * 20_000)
    assert "DSL001" in parse_error("\x00\xff binary")


@pytest.mark.parametrize(
    "text",
    [
        "a - (b - c)",
        "not (a and b) or c",
        "-(-x)",
        "(a + b)[1]@1h.upper",
        "f(g(1, k='x'), 2.5, 1e-05, 10%)",
        "a or b and c",
        "(a or b) and c",
    ],
)
def test_printing_then_parsing_gives_the_same_tree(text):
    expr = parse_expression(text)
    assert parse_expression(to_source(expr)) == expr
