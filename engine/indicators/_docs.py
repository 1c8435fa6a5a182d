"""The function reference (docs/functions.md), generated from the registry.

    .venv/bin/python -m engine.indicators._docs      # rewrites docs/functions.md

A test fails when the committed file differs from what this produces.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from dsl.registry import Column, FunctionSpec, Param, Registry
from dsl.types import Kind, Type

__all__ = ["CATEGORIES", "DOC_PATH", "render_function", "render_reference", "signature"]

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "functions.md"

# Display order and titles; anything else goes last under its own name.
CATEGORIES: dict[str, str] = {
    "logic": "Conditions and events",
    "math": "Series arithmetic",
    "overlap": "Moving averages and overlays",
    "momentum": "Momentum",
    "volatility": "Volatility",
    "trend": "Trend",
    "volume": "Volume",
    "pattern": "Candlestick patterns",
    "levels": "Price levels",
    "statistics": "Statistics",
    "cycle": "Cycles",
    "candle": "Candles",
    "performance": "Returns",
    "chart": "Chart patterns",
    "divergence": "Divergences",
    "anomaly": "Anomalies",
    "time": "Time of day",
}


def signature(spec: FunctionSpec) -> str:
    """``atr(length=14, *, high=high, low=low, close=close)``."""
    parts: list[str] = []
    star = False
    for p in spec.params:
        if p.keyword_only and not star:
            parts.append("*")
            star = True
        parts.append(p.name if p.required else f"{p.name}={_default(p)}")
    return f"{spec.name}({', '.join(parts)})"


def _default(p: Param) -> str:
    if isinstance(p.default, Column):
        return p.default.name
    if isinstance(p.default, bool):
        return "true" if p.default else "false"
    if isinstance(p.default, str):
        return f'"{p.default}"'
    return repr(p.default)


def _type(t: Type, p: Param | None = None) -> str:
    if t.kind is Kind.STRING:
        return "string"
    if t.kind is Kind.BOOL:
        return "condition" if t.series else "true/false"
    if t.series:
        return "series"
    return "whole number" if p is not None and p.integer else "number"


def _result(t: Type) -> str:
    return "a condition (true/false per candle)" if t.kind is Kind.BOOL else "a series of numbers"


def _returns(spec: FunctionSpec) -> str:
    outputs = spec.outputs
    if outputs is None:
        assert isinstance(spec.returns, Type)
        return _result(spec.returns)
    members = ", ".join(
        f"`.{name}`" + ("" if t.kind is Kind.NUMBER else " (condition)") for name, t in outputs.items()
    )
    return f"several outputs {members}; default `.{spec.default_output}`"


def _limits(p: Param) -> str:
    if p.choices is not None:
        if len(p.choices) > 20:
            return f"one of the {len(p.choices)} names listed above"
        return ", ".join(f'"{c}"' for c in p.choices)
    if p.min is not None and p.max is not None:
        return f"{_num(p.min)} to {_num(p.max)}"
    if p.min is not None:
        return f">= {_num(p.min)}"
    if p.max is not None:
        return f"<= {_num(p.max)}"
    return ""


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_function(spec: FunctionSpec, level: int = 3) -> str:
    lines = [f"{'#' * level} `{signature(spec)}`", "", f"Returns {_returns(spec)}.", "", _cell(spec.doc), ""]
    if spec.params:
        lines += ["| argument | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        for p in spec.params:
            default = "required" if p.required else f"`{_default(p)}`"
            lines.append(
                f"| `{p.name}` | {_type(p.type, p)} | {default} | {_cell(_limits(p))} | {_cell(p.doc)} |"
            )
        lines.append("")
    lines += [f"Example: `{spec.example}`", ""]
    return "\n".join(lines)


def _curated_names() -> set[str]:
    import importlib

    from engine.indicators import CURATED_MODULES

    names: set[str] = set()
    for module in CURATED_MODULES:
        names.update(spec.name for spec in importlib.import_module(f"engine.indicators.{module}").SPECS)
    return names


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c == "-")


def render_reference(registry: Registry) -> str:
    from engine.indicators._pandas_ta import SKIPPED

    curated = _curated_names()
    by_category: dict[str, list[FunctionSpec]] = {}
    for spec in registry.functions.values():
        by_category.setdefault(spec.category, []).append(spec)
    order = [c for c in CATEGORIES if c in by_category] + sorted(set(by_category) - set(CATEGORIES))
    out = [
        "# Function reference",
        "",
        "<!-- Generated from the registry by `.venv/bin/python -m engine.indicators._docs`; do not edit by hand.",
        "     A test fails when this file is stale. -->",
        "",
        f"Every function a rule can call: {len(registry.functions)} in all. The hand-written ones come first in "
        "each section; the rest of pandas-ta follows, registered by introspection. See [dsl.md](dsl.md) for the "
        "language. `engine functions NAME` prints one entry at the terminal.",
        "",
        "Conventions: the series a function smooths or measures is its first argument (`ema(close, 12)`); "
        "functions that need several candle columns read them from keyword-only arguments that default to the "
        "candles (`atr(14)`, or `atr(14, high=high@1h, low=low@1h, close=close@1h)`). Functions with several "
        "outputs are read with a member (`macd(close).signal`); without one you get the default output. "
        "Warm-up: the number of first candles whose value is undefined or not yet settled; the plan adds it up "
        "across the expression and reports it.",
        "",
        "## Contents",
        "",
    ]
    for category in order:
        title = CATEGORIES.get(category, category.capitalize())
        names = ", ".join(f"`{s.name}`" for s in _sorted(by_category[category], curated))
        out.append(f"- [{title}](#{_anchor(title)}): {names}")
    out.append("- [Not available](#not-available)")
    out.append("")
    for category in order:
        title = CATEGORIES.get(category, category.capitalize())
        out += [f"## {title}", ""]
        specs = _sorted(by_category[category], curated)
        own = [s for s in specs if s.name in curated]
        rest = [s for s in specs if s.name not in curated]
        out += [render_function(s) for s in own]
        if rest:
            if own:
                out += ["### More from pandas-ta", ""]
            out += [render_function(s, level=4 if own else 3) for s in rest]
    out += [
        "## Not available",
        "",
        "pandas-ta functions that are not registered, and why:",
        "",
        "| pandas-ta | reason |",
        "|---|---|",
        *(
            f"| `{name}` | {_cell(reason)} |"
            for name, reason in sorted(SKIPPED.items())
            if name not in curated
        ),
        "",
    ]
    return "\n".join(out)


def _sorted(specs: Iterable[FunctionSpec], curated: set[str]) -> list[FunctionSpec]:
    return sorted(specs, key=lambda s: (s.name not in curated, s.name))


def main() -> None:
    from engine.indicators import build_registry

    DOC_PATH.write_text(render_reference(build_registry()))
    print(f"wrote {DOC_PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
