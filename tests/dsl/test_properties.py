"""Property-based tests: random valid expressions compile and evaluate; printing round-trips;
arbitrary text never crashes the parser."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dsl import DiagnosticError, Source, compile_expression, parse_expression, to_source
from dsl import ast as A
from tests.dsl.conftest import synthetic_candles
from tests.dsl.toy_registry import make_registry

REGISTRY = make_registry()
CANDLES = synthetic_candles(300)
SERIES = ["open", "high", "low", "close", "volume", "hl2", "hlc3", "ohlc4"]
TIMEFRAMES = ["5m", "15m", "1h"]

lengths = st.integers(min_value=1, max_value=30).map(A.Number)
numbers = st.one_of(
    st.integers(min_value=0, max_value=10_000).map(A.Number),
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False).map(A.Number),
    st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda v: A.Percent(round(v, 3))),
)


def number_exprs(depth: int) -> st.SearchStrategy[A.Expr]:
    leaves = st.one_of(numbers, st.sampled_from(SERIES).map(A.Name))
    if depth == 0:
        return leaves
    inner = number_exprs(depth - 1)
    return st.one_of(
        leaves,
        st.builds(A.Binary, st.sampled_from("+-*/"), inner, inner),
        st.builds(A.Negate, inner),
        st.builds(lambda s, n: A.Call("sma", (s, n)), inner, lengths),
        st.builds(lambda s, n: A.Call("ema", (s,), (A.Keyword("length", n),)), inner, lengths),
        st.builds(lambda n: A.Call("atr", (n,)), lengths),
        st.builds(
            lambda s, m: A.Member(A.Call("bands", (s, A.Number(5))), m),
            inner,
            st.sampled_from(["lower", "middle", "upper"]),
        ),
        st.builds(A.History, inner, st.integers(0, 5).map(A.Number)),
        st.builds(A.AtTimeframe, inner, st.sampled_from(TIMEFRAMES)),
    )


def bool_exprs(depth: int) -> st.SearchStrategy[A.Expr]:
    numbers_ = number_exprs(max(depth - 1, 0))
    leaves = st.one_of(
        st.booleans().map(A.BoolLiteral),
        st.builds(A.Compare, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), numbers_, numbers_),
        st.builds(lambda a, b: A.Call("crosses_above", (a, b)), numbers_, numbers_),
    )
    if depth == 0:
        return leaves
    inner = bool_exprs(depth - 1)
    return st.one_of(
        leaves,
        st.builds(A.Logical, st.sampled_from(["and", "or"]), inner, inner),
        st.builds(A.Not, inner),
        st.builds(A.History, inner, st.integers(0, 3).map(A.Number)),
    )


any_expr = st.one_of(number_exprs(3), bool_exprs(3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_expr)
def test_printing_and_parsing_again_gives_the_same_tree(expr):
    assert parse_expression(to_source(expr)) == expr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_expr)
def test_random_valid_expressions_compile_and_evaluate(expr):
    try:
        plan = compile_expression(Source(to_source(expr)), REGISTRY, "5m")
    except DiagnosticError as error:
        # The generator may nest a lower timeframe inside a higher one (x@5m)@1h, which is refused.
        assert all("would need lower-timeframe data" in d.message for d in error.diagnostics), error
        assume(False)
    out = plan.evaluate(CANDLES)
    assert list(out.columns) == ["value"]
    assert len(out) == len(CANDLES)
    assert plan.warmup >= 0


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc()[]@.,=<>+-*/% 019mh'\"_\n\x00é")), max_size=60))
def test_arbitrary_text_gives_a_diagnostic_or_a_tree(text):
    try:
        compile_expression(text, REGISTRY, "5m")
    except DiagnosticError as error:
        assert error.diagnostics and all(d.code.startswith("DSL") for d in error.diagnostics)
