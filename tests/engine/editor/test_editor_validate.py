"""Rule checks in a strategy's context: positions are relative to the rule text."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl import DiagnosticError
from engine.editor import RULE_FILE, Compare, Number, RawExpr, RuleContext, validate_block, validate_rule

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def context() -> RuleContext:
    return RuleContext.from_file(ROOT / "strategies" / "ema_rsi.yaml")


def test_context_from_file(context: RuleContext) -> None:
    assert context.timeframe == "5m"
    assert context.inputs == {"fast": 12, "slow": 26, "rsi_max": 70, "stop_atr": 2.0}
    assert context.features["fast_ma"] == "ema(close, fast)"


def test_valid_rules(context: RuleContext) -> None:
    assert validate_rule("crosses_above(fast_ma, slow_ma) and momentum < rsi_max", context) == []
    assert validate_rule("stop_atr * atr(14)", context, expect="number") == []
    assert validate_rule("close@1h > ema(close, slow)@4h", context) == []


@pytest.mark.parametrize(
    ("text", "code", "col", "end_col"),
    [
        ("crosses_above(fast_ma, slow_ma) and momentum < rsi_mx", "DSL003", 48, 54),
        ("rsi(close, 14", "DSL001", 14, 15),
        ("rsii(close, 14) < 30", "DSL002", 1, 5),
        ("close", "DSL005", 1, 6),
        ("close@1m > open", "DSL008", 7, 9),
        ("ema(close, 0) > close", "DSL009", 12, 13),
        ("bbands(close).uper > close", "DSL011", 15, 19),
        ("close[-1] < close", "DSL006", 7, 9),
    ],
)
def test_errors_point_into_the_text(
    context: RuleContext, text: str, code: str, col: int, end_col: int
) -> None:
    problems = validate_rule(text, context)
    assert problems, text
    first = problems[0]
    assert first.code == code
    assert first.span is not None and first.span.file == RULE_FILE
    assert (first.span.line, first.span.col) == (1, col)
    assert first.span.end_col == end_col


def test_multiline_rule_positions(context: RuleContext) -> None:
    problems = validate_rule("close > open\n  and volume > slw", context)
    assert [(d.code, d.span.line, d.span.col) for d in problems if d.span] == [("DSL003", 2, 16)]


def test_number_expected(context: RuleContext) -> None:
    assert [d.code for d in validate_rule("close > open", context, expect="number")] == ["DSL005"]


def test_broken_feature_is_not_blamed_on_the_rule() -> None:
    context = RuleContext("5m", {}, {"bad": "rsii(close, 14)", "good": "rsi(close, 14)"})
    assert validate_rule("good < 30", context) == []


def test_editing_a_feature_does_not_see_its_old_text(context: RuleContext) -> None:
    own = context.without_feature("fast_ma")
    assert "fast_ma" not in own.features
    assert [d.code for d in validate_rule("ema(close, fast) > fast_ma", own)] == ["DSL003"]


def test_unsupported_strategy_timeframe_is_reported() -> None:
    assert [d.code for d in validate_rule("close > open", RuleContext("7m"))] == ["DSL008"]


def test_validate_block(context: RuleContext) -> None:
    text, problems = validate_block(
        Compare(op="<", left=RawExpr(text="momentum"), right=Number(value=30)), context
    )
    assert (text, problems) == ("momentum < 30", [])
    text, problems = validate_block(RawExpr(text="momentum <"), context)
    assert text == "" and [d.code for d in problems] == ["DSL001"]


def test_context_from_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("strategy: [unclosed\n")
    with pytest.raises(DiagnosticError):
        RuleContext.from_file(broken)
