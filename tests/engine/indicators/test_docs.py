"""docs/functions.md is generated from the registry and must be up to date."""

from __future__ import annotations

from engine.indicators import build_registry
from engine.indicators._docs import DOC_PATH, render_function, render_reference, signature


def test_committed_reference_is_current():
    expected = render_reference(build_registry())
    assert DOC_PATH.read_text() == expected, (
        "docs/functions.md is stale: regenerate it with `.venv/bin/python -m engine.indicators._docs`"
    )


def test_reference_lists_every_function_once(registry):
    text = DOC_PATH.read_text()
    for name, spec in registry.functions.items():
        assert text.count(f"`{signature(spec)}`\n") == 1, name
    assert text.index("`ema(source, length)`") < text.index("`zlma(source, length=10, mamode=")
    assert "| `zigzag` | looks ahead" in text


def test_signature_marks_keyword_only_columns(registry):
    assert signature(registry.lookup("atr")) == "atr(length=14, *, high=high, low=low, close=close)"
    assert signature(registry.lookup("pattern")).startswith('pattern(name, direction="any", *, open=open')
    entry = render_function(registry.lookup("macd"))
    assert "`.macd`, `.signal`, `.hist`; default `.macd`" in entry
