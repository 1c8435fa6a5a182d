from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsl import BOOL, NUMBER, DiagnosticError, Source, compile_expression, compile_rules, resample_candles
from tests.dsl.toy_registry import make_registry


def errors(text: str, registry, features=None, inputs=None, expected=BOOL) -> list[str]:
    with pytest.raises(DiagnosticError) as caught:
        compile_rules(
            {k: Source(v) for k, v in (features or {}).items()},
            {"rule": (Source(text, "s.yaml", ((0, 4, 9),)), expected)},
            inputs or {},
            registry,
            "5m",
        )
    return [d.headline() for d in caught.value.diagnostics]


def test_common_subexpressions_are_computed_once(candles):
    registry = make_registry()
    calls = []
    ema = registry.functions["ema"]
    original = ema.impl
    object.__setattr__(ema, "impl", lambda **kw: calls.append(kw["length"]) or original(**kw))
    plan = compile_rules(
        {"fast": Source("ema(close, 12)")},
        {
            "entry": (Source("crosses_above(ema(close, 12), ema(close, 26)) and ema(close, 12) > 0"), BOOL),
            "exit": (Source("fast < ema(close, 2 * 13)"), BOOL),
        },
        {},
        registry,
        "5m",
    )
    plan.evaluate(candles)
    assert sorted(calls) == [12, 26]
    assert plan.describe().count("call@5m ema") == 2


def test_multi_output_function_runs_once_for_several_members(candles):
    registry = make_registry()
    plan = compile_rules(
        {},
        {
            "a": (Source("close > bands(close).upper"), BOOL),
            "b": (Source("close < bands(close).lower"), BOOL),
        },
        {},
        registry,
        "5m",
    )
    assert plan.describe().count("call@5m bands") == 1
    out = plan.evaluate(candles)
    assert out["a"].dtype == bool and out["b"].dtype == bool
    assert not (out["a"] & out["b"]).any()


def test_warmup_is_computed_from_the_expression(registry):
    def warmup(text: str) -> int:
        return compile_expression(text, registry, "5m").warmup

    assert warmup("sma(close, 20)") == 19
    assert warmup("sma(sma(close, 20), 10)") == 28
    assert warmup("sma(close, 20)[5]") == 24
    assert warmup("close > sma(close, 1h)") == 11  # 1h = 12 bars of 5m
    assert warmup("sma(close, 3)@1h > 0") == (2 + 1) * 12


def test_inputs_fold_into_constant_arguments(registry, candles):
    plan = compile_rules({}, {"v": (Source("sma(close, n * 2) > 0"), BOOL)}, {"n": 5}, registry, "5m")
    assert "length=10" in plan.describe()
    assert plan.warmup == 9


def test_history_reads_the_past_only(registry, candles):
    out = compile_expression("close[2]", registry, "5m").evaluate(candles)["value"]
    expected = candles["close"].shift(2)
    pd.testing.assert_series_equal(out, expected, check_names=False)


def test_higher_timeframe_values_appear_only_after_their_candle_closes(registry, candles):
    out = compile_expression("close@1h", registry, "5m").evaluate(candles)["value"]
    hourly = candles["close"].resample("1h").last()
    # The 5m candle opening at 10:55 closes at 11:00, together with the 10:00 hourly candle.
    at = candles.index[candles.index.get_loc(pd.Timestamp("2024-01-01 10:55", tz="UTC"))]
    assert out[at] == hourly[pd.Timestamp("2024-01-01 10:00", tz="UTC")]
    before = pd.Timestamp("2024-01-01 10:50", tz="UTC")
    assert out[before] == hourly[pd.Timestamp("2024-01-01 09:00", tz="UTC")]
    assert np.isnan(out.iloc[:11]).all()  # no 1h candle has closed before 00:55 closes


def test_functions_of_higher_timeframe_series_run_on_that_timeframe(registry, candles):
    written_inside = compile_expression("sma(close@1h, 3)", registry, "5m").evaluate(candles)["value"]
    written_outside = compile_expression("sma(close, 3)@1h", registry, "5m").evaluate(candles)["value"]
    pd.testing.assert_series_equal(written_inside, written_outside)
    hourly = resample_candles(candles, "1h")["close"].rolling(3).mean()
    last_5m = pd.Timestamp("2024-01-03 01:55", tz="UTC")
    assert written_inside[last_5m] == pytest.approx(hourly[pd.Timestamp("2024-01-03 01:00", tz="UTC")])
    assert written_inside.dropna().nunique() == hourly.dropna().nunique()


def test_evaluating_a_prefix_gives_the_same_values(registry, candles):
    """No node may look ahead: values on a prefix equal values on the full history."""
    plan = compile_rules(
        {"trend": Source("close@1h > sma(close@1h, 3)")},
        {
            "entry": (Source("crosses_above(sma(close, 5), sma(close, 20)) and trend"), BOOL),
            "stop": (Source("2 * atr(14)"), NUMBER),
        },
        {},
        registry,
        "5m",
    )
    full = plan.evaluate(candles)
    for cut in (100, 257, 431):
        part = plan.evaluate(candles.iloc[:cut])
        pd.testing.assert_frame_equal(part, full.iloc[:cut])


def test_every_error_is_reported_at_its_column(registry):
    found = errors(
        "crosses_above(fst, sma(close)) and rsi(close) > 1 and close[-1] > 2", registry, inputs={"fast": 1}
    )
    assert found == [
        "s.yaml:4:23: error[DSL003]: unknown name 'fst' (did you mean 'fast'?)",
        "s.yaml:4:28: error[DSL004]: sma() is missing argument(s): length — sma(source, length)",
        "s.yaml:4:44: error[DSL002]: unknown function 'rsi'",
        "s.yaml:4:69: error[DSL006]: '[-1]' would read 1 candle(s) into the future; history offsets look back and must be >= 0",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sma(close, 12, 3) > 1",
            "error[DSL004]: sma() takes at most 2 positional argument(s) (source, length), got 3",
        ),
        ("sma(close, len=3) > 1", "error[DSL004]: sma() has no argument 'len' (did you mean 'length'?)"),
        ("sma(close, 3, length=4) > 1", "error[DSL004]: sma() got argument 'length' twice"),
        ("close > true", "error[DSL005]: operand of '>' must be a number, got constant bool"),
        (
            "close and true",
            "error[DSL005]: operand of 'and' must be a condition (true/false), got series of number",
        ),
        (
            "sma(close, close) > 1",
            "error[DSL005]: argument 'length' of sma() must be a constant number, got series of number",
        ),
        ("sma(close, 1.5) > 1", "error[DSL009]: argument 'length' of sma() must be a whole number, got 1.5"),
        ("sma(close, 0) > 1", "error[DSL009]: argument 'length' of sma() must be >= 1, got 0"),
        (
            "pattern('hamer')",
            "error[DSL009]: argument 'name' of pattern(): unknown value 'hamer' (did you mean 'hammer'?)",
        ),
        ("close@7m > 1", "error[DSL008]: unsupported timeframe '7m'"),
        ("close@1m > 1", "error[DSL008]: timeframe 1m cannot be built from this strategy's 5m candles"),
        ("sma(close, 7m) > 1", "error[DSL008]: 7m is not a whole number of 5m candles"),
        ("close + 1h > 1", "error[DSL005]: a duration like 1h is only valid after '@' or as a bar count"),
        ("bands(close).uper > 1", "error[DSL011]: bands() has no output 'uper' (did you mean 'upper'?)"),
        ("sma(close, 2).x > 1", "error[DSL011]: sma() has a single output; remove '.x'"),
        ("sentiment.score > 0", "error[DSL011]: unknown feed 'sentiment'"),
        ("close", "error[DSL005]: 'rule' must be a condition (true/false), got series of number"),
        ("sma > 1", "error[DSL003]: 'sma' is a function: call it, e.g. sma(...)"),
        ("close(1) > 1", "error[DSL002]: 'close' is not a function"),
    ],
)
def test_error_messages(registry, text, message):
    found = errors(text, registry)
    assert len(found) == 1 and message in found[0], found


def test_feature_cycles_are_reported(registry):
    found = errors("a > 1", registry, features={"a": "b + 1", "b": "a * 2"})
    assert any("DSL010" in f and "a -> b -> a" in f for f in found)


def test_stop_rules_must_be_numbers(registry):
    found = errors("close > 1", registry, expected=NUMBER)
    assert found == ["s.yaml:4:9: error[DSL005]: 'rule' must be a number, got series of bool"]


def test_constant_rules_broadcast(registry, candles):
    out = compile_rules(
        {}, {"on": (Source("1 < 2"), BOOL), "k": (Source("2 * 3%"), NUMBER)}, {}, registry, "5m"
    ).evaluate(candles)
    assert out["on"].all() and np.allclose(out["k"], 0.06)
