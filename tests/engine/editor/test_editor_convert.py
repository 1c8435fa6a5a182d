"""Blocks <-> DSL text: every example rule and generated expressions survive the round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from dsl import DiagnosticError, ast, parse_expression
from engine.config import load_strategy
from engine.editor import (
    Arith,
    Block,
    Compare,
    Cross,
    Group,
    Indicator,
    Input,
    Number,
    RawExpr,
    RuleContext,
    Series,
    Text,
    block_to_text,
    text_to_block,
    validate_block,
    validate_rule,
)

ROOT = Path(__file__).resolve().parents[3]
STRATEGIES = sorted((ROOT / "strategies").glob("*.yaml"))
BLOCK = TypeAdapter(Block)


def _rules(path: Path) -> list[str]:
    model = load_strategy(path, relative_to=ROOT).model
    texts = list(model.features.values())
    for sides in (model.entry, model.exit):
        texts += [t for t in (sides.long, sides.short) if t is not None]
    texts += [*model.confirm.long, *model.confirm.short]
    for score in (model.score.long, model.score.short):
        texts += [s.when for s in score.signals] if score is not None else []
    texts += [s for s in (model.stops.stop_loss, model.stops.take_profit) if isinstance(s, str)]
    return texts


EXAMPLE_RULES = [(p.name, text) for p in STRATEGIES for text in _rules(p)]


def test_examples_have_rules() -> None:
    assert len(STRATEGIES) >= 5
    assert len(EXAMPLE_RULES) >= 30


@pytest.mark.parametrize(("file", "text"), EXAMPLE_RULES)
def test_example_rule_round_trip(file: str, text: str) -> None:
    block = text_to_block(text)
    assert parse_expression(block_to_text(block)) == parse_expression(text)
    # Blocks travel as JSON between browser and server.
    assert BLOCK.validate_json(BLOCK.dump_json(block)) == block


def test_dedicated_blocks_are_used() -> None:
    block = text_to_block(
        "crosses_above(ema(close, fast), ema(close, 26)) and bbands(close, length=20).upper@1h[2] < close@4h[3]",
        inputs={"fast"},
    )
    assert isinstance(block, Group) and block.mode == "all"
    cross, compare = block.items
    assert isinstance(cross, Cross) and cross.direction == "above"
    assert cross.a == Indicator(name="ema", args=(Series(name="close"), Input(name="fast")))
    assert isinstance(compare, Compare) and compare.op == "<"
    assert compare.left == Indicator(
        name="bbands",
        args=(Series(name="close"),),
        keywords={"length": Number(value=20)},
        member="upper",
        timeframe="1h",
        lookback=2,
    )
    assert compare.right == Series(name="close", timeframe="4h", lookback=3)


def test_left_spine_flattens_and_right_nesting_stays() -> None:
    flat = text_to_block("a and b and c")
    assert isinstance(flat, Group) and len(flat.items) == 3
    nested = text_to_block("a and (b and c)")
    assert isinstance(nested, Group) and len(nested.items) == 2 and isinstance(nested.items[1], Group)
    assert block_to_text(nested) == "a and (b and c)"


def test_constructs_without_blocks_become_raw_text() -> None:
    block = text_to_block("(close > ema(close, 50))@4h and close[1]@1h > 0")
    assert isinstance(block, Group)
    assert block.items[0] == RawExpr(text="(close > ema(close, 50))@4h")
    assert isinstance(block.items[1], Compare) and block.items[1].left == RawExpr(text="close[1]@1h")


def test_raw_text_with_a_syntax_error_is_reported() -> None:
    with pytest.raises(DiagnosticError) as caught:
        block_to_text(Compare(op=">", left=RawExpr(text="rsi(close, 14"), right=Number(value=70)))
    assert caught.value.diagnostics[0].code == "DSL001"


def test_blocks_that_cannot_be_written_are_refused() -> None:
    with pytest.raises(ValidationError):
        Number(value=1e-07, percent=True)
    with pytest.raises(ValidationError):
        Number(value=-1)
    with pytest.raises(ValidationError):
        Text(value='it\'s "x"')
    with pytest.raises(ValidationError):
        Series(name="close-1")
    assert block_to_text(Number(value=0.5, percent=True)) == "0.5%"


def test_rule_built_from_blocks_is_valid_dsl() -> None:
    rule = Group(
        mode="all",
        items=(
            Cross(
                direction="above",
                a=Indicator(name="ema", args=(Series(name="close"), Input(name="fast"))),
                b=Indicator(name="ema", args=(Series(name="close"), Number(value=26))),
            ),
            Compare(
                op="<",
                left=Indicator(name="rsi", args=(Series(name="close"), Number(value=14)), timeframe="1h"),
                right=Input(name="rsi_max"),
            ),
            Compare(
                op=">",
                left=Series(name="close"),
                right=Arith(
                    op="*", left=Series(name="fast_ma", lookback=1), right=Number(value=1, percent=True)
                ),
            ),
        ),
    )
    context = RuleContext.from_file(ROOT / "strategies" / "ema_rsi.yaml")
    text, problems = validate_block(rule, context)
    assert problems == []
    assert text == (
        "crosses_above(ema(close, fast), ema(close, 26)) and rsi(close, 14)@1h < rsi_max "
        "and close > fast_ma[1] * 1%"
    )
    assert validate_rule(text, context) == []


# ----- generated expressions ---------------------------------------------------------------------------
_RESERVED = {"and", "or", "not", "true", "false"}
_names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda n: n not in _RESERVED)
_durations = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 99), st.sampled_from("smhdw"))
_numbers = st.one_of(
    st.integers(0, 10_000), st.floats(0, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
)
_leaves = st.one_of(
    st.builds(ast.Number, _numbers),
    # A percentage is written without an exponent (`1.5%`), so fractions stay in plain decimals.
    st.builds(ast.Percent, st.integers(0, 1000) | st.integers(0, 100_000).map(lambda n: n / 100)),
    st.builds(ast.Duration, _durations),
    st.builds(ast.String, st.from_regex(r"[a-z ]{0,8}", fullmatch=True)),
    st.builds(ast.BoolLiteral, st.booleans()),
    st.builds(ast.Name, _names),
)


def _extend(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    keywords = st.lists(st.builds(ast.Keyword, _names, children), max_size=2, unique_by=lambda k: k.name)
    return st.one_of(
        st.builds(
            ast.Call,
            _names | st.sampled_from(["crosses_above", "crosses_below"]),
            st.lists(children, max_size=3).map(tuple),
            keywords.map(tuple),
        ),
        st.builds(ast.Member, children, _names),
        st.builds(ast.History, children, children),
        st.builds(ast.AtTimeframe, children, _durations),
        st.builds(ast.Negate, children),
        st.builds(ast.Not, children),
        st.builds(ast.Binary, st.sampled_from("+-*/"), children, children),
        st.builds(ast.Compare, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), children, children),
        st.builds(ast.Logical, st.sampled_from(["and", "or"]), children, children),
    )


_expressions = st.recursive(_leaves, _extend, max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=_expressions, inputs=st.sets(_names, max_size=3))
def test_generated_expression_round_trip(expr: ast.Expr, inputs: set[str]) -> None:
    # Printed and parsed once so that the tree is one the parser can produce (e.g. `not` binds loosely).
    original = parse_expression(ast.to_source(expr))
    block = text_to_block(ast.to_source(original), inputs)
    assert parse_expression(block_to_text(block)) == original
    assert BLOCK.validate_json(BLOCK.dump_json(block)) == block
