"""The second phase for strategies: meaning (names, ranges, rule shape) and the DSL, with positions.

Rules are read from the positioned YAML tree rather than from the validated model, so DSL errors are
reported even when an unrelated key has a schema error (every error, not just the first layer's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from dsl import BOOL, NUMBER, Diagnostic, DiagnosticError, Plan, Registry, Source, Type, compile_rules
from dsl.plan import SERIES_NAMES
from dsl.timeframes import SUPPORTED_TIMEFRAMES
from engine.config._errors import validation_diagnostics
from engine.config._sources import LineIndex, scalar_source
from engine.config._strategy import Strategy
from engine.config._types import describe, format_ratio, parse_percent
from engine.config._yaml import YamlDocument, YamlNode

__all__ = [
    "InputInfo",
    "StrategyAnalysis",
    "alert_column",
    "alert_score_column",
    "analyse_strategy",
    "compile_strategy",
    "rule_name",
]

SIDES = ("long", "short")
InputValue = int | float | bool


def alert_column(name: str) -> str:
    """Column of an alert's condition in the Plan: alert_<name>."""
    return f"alert_{name}"


def alert_score_column(name: str) -> str:
    """Column of an alert's score in the Plan: alert_<name>_score."""
    return f"alert_{name}_score"


def rule_name(section: str, side: str | None = None, index: int | None = None) -> str:
    """Column name of a rule in the Plan: entry_long, exit_short, confirm_long_1, score_short_2, stop_loss."""
    name = section if side is None else f"{section}_{side}"
    return name if index is None else f"{name}_{index + 1}"


@dataclass(frozen=True, slots=True)
class InputInfo:
    """What the checks need to know about one input, read leniently from the YAML tree."""

    name: str
    kind: str  # int | float | bool
    default: InputValue
    low: float | None
    high: float | None
    node: YamlNode  # the input's mapping
    key: YamlNode

    def range_text(self) -> str:
        return f"[{_plain(self.low)}, {_plain(self.high)}]"

    def check(self, value: Any) -> str | None:
        """Why ``value`` cannot be this input's value, or None."""
        if self.kind == "bool":
            return (
                None
                if isinstance(value, bool)
                else f"input '{self.name}' is true/false, got {describe(value)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"input '{self.name}' is a number, got {describe(value)}"
        if self.kind == "int" and not float(value).is_integer():
            return f"input '{self.name}' is a whole number, got {describe(value)}"
        if self.low is not None and self.high is not None and not self.low <= value <= self.high:
            return f"{_plain(value)} is outside the range {self.range_text()} of input '{self.name}'"
        return None


def _plain(number: Any) -> str:
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return str(number)


@dataclass
class StrategyAnalysis:
    """Everything learnt about one strategy file with its default inputs."""

    document: YamlDocument
    model: Strategy | None = None
    inputs: dict[str, InputInfo] = field(default_factory=dict)
    inputs_usable: bool = True  # every input has a usable default (so rules can be compiled)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    plan: Plan | None = None

    @property
    def file(self) -> str:
        return self.document.path


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read_inputs(root: YamlNode) -> tuple[dict[str, InputInfo], bool]:
    inputs: dict[str, InputInfo] = {}
    usable = True
    section = root.get("inputs")
    if section is None or section.kind != "map":
        return inputs, section is None or (section.kind == "scalar" and section.value is None)
    for name, (key, node) in section.items.items():
        default = node.get("default") if node.kind == "map" else None
        value = default.value if default is not None else None
        if not (isinstance(value, bool) or _number(value)):
            usable = False
            continue
        bounds = node.get("range")
        low = high = None
        if bounds is not None and bounds.kind == "seq" and len(bounds.children) == 2:
            a, b = (child.value for child in bounds.children)
            if _number(a) and _number(b):
                low, high = float(a), float(b)
        declared = node.get("type")
        declared_kind = declared.value if declared is not None else None
        if declared_kind in ("int", "float", "bool"):
            kind = declared_kind
        elif isinstance(value, bool):
            kind = "bool"
        elif isinstance(value, int) and all(
            isinstance(c.value, int) and not isinstance(c.value, bool)
            for c in (bounds.children if bounds is not None and bounds.kind == "seq" else [])
        ):
            kind = "int"
        else:
            kind = "float"
        if kind == "int" and not isinstance(value, bool) and float(value).is_integer():
            value = int(value)
        inputs[name] = InputInfo(name, kind, value, low, high, node, key)
    return inputs, usable


def _rules(root: YamlNode) -> dict[str, tuple[YamlNode, Type]]:
    """Rule column -> (expression node, expected type), for every rule-shaped node present."""
    out: dict[str, tuple[YamlNode, Type]] = {}

    def add(name: str, node: YamlNode | None, type_: Type) -> None:
        if node is not None and node.kind == "scalar" and node.value is not None:
            out[name] = (node, type_)

    for section in ("entry", "exit", "fast_exit"):
        sides = root.get(section)
        for side in SIDES:
            add(rule_name(section, side), sides.get(side) if sides else None, BOOL)
    confirm = root.get("confirm")
    for side in SIDES:
        items = confirm.get(side) if confirm else None
        if items is not None and items.kind == "seq":
            for index, child in enumerate(items.children):
                add(rule_name("confirm", side, index), child, BOOL)
    score = root.get("score")
    for side in SIDES:
        spec = score.get(side) if score else None
        signals = spec.get("signals") if spec else None
        if signals is not None and signals.kind == "seq":
            for index, child in enumerate(signals.children):
                add(rule_name("score", side, index), child.get("when"), BOOL)
    stops = root.get("stops")
    for name in ("stop_loss", "take_profit"):
        node = stops.get(name) if stops else None
        if node is not None and isinstance(node.value, str) and parse_percent(node.value) is None:
            add(name, node, NUMBER)
    add("size", root.get("size"), NUMBER)
    alerts = root.get("alerts")
    if alerts is not None and alerts.kind == "map":
        for name, (_, spec) in alerts.items.items():
            if spec.kind == "map":
                add(alert_column(name), spec.get("when"), BOOL)
                add(alert_score_column(name), spec.get("score"), NUMBER)
    return out


def _features(root: YamlNode) -> dict[str, YamlNode]:
    section = root.get("features")
    if section is None or section.kind != "map":
        return {}
    return {
        name: node
        for name, (_, node) in section.items.items()
        if node.kind == "scalar" and node.value is not None
    }


def _expression_text(node: YamlNode, text: str) -> str:
    if isinstance(node.value, str):
        return node.value
    return text[node.start : node.end]  # a number or true/false written as a rule


def compile_strategy(
    analysis: StrategyAnalysis, registry: Registry, overrides: Mapping[str, InputValue] | None = None
) -> tuple[Plan | None, list[Diagnostic]]:
    """Compile the strategy's rules with its defaults and ``overrides`` applied."""
    doc, root = analysis.document, analysis.document.root
    if root is None or not analysis.inputs_usable:
        return None, []
    timeframe = root.get("timeframe")
    if timeframe is None or timeframe.value not in SUPPORTED_TIMEFRAMES:
        return None, []
    lines = LineIndex(doc.text)

    def source(node: YamlNode) -> Source:
        return scalar_source(node, _expression_text(node, doc.text), doc.path, doc.text, lines)

    rule_nodes = _rules(root)
    # Features whose names clash are reported by the name checks and left out here, so that the
    # name keeps meaning the input, candle series or rule it clashes with.
    feature_nodes = {
        name: node
        for name, node in _features(root).items()
        if name not in analysis.inputs and name not in SERIES_NAMES and name not in rule_nodes
    }
    features = {name: source(node) for name, node in feature_nodes.items()}
    rules = {name: (source(node), type_) for name, (node, type_) in rule_nodes.items()}
    values: dict[str, InputValue] = {name: info.default for name, info in analysis.inputs.items()}
    values.update(overrides or {})
    try:
        plan = compile_rules(features, rules, values, registry, str(timeframe.value))
    except DiagnosticError as exc:
        nodes = [*feature_nodes.values(), *(node for node, _ in rule_nodes.values())]
        return None, [_comma_hint(d, nodes, doc.text) for d in exc.diagnostics]
    return plan, []


def _comma_hint(diagnostic: Diagnostic, nodes: list[YamlNode], text: str) -> Diagnostic:
    """A syntax error in an unquoted rule that a comma cut short inside {...} or [...] gets a note."""
    span = diagnostic.span
    if diagnostic.code != "DSL001" or span is None:
        return diagnostic
    for node in nodes:
        cut = node.style is None and text[node.end : node.end + 1] == ","
        if cut and (node.line, node.col) <= (span.line, span.col) <= (node.end_line, node.end_col):
            note = "inside {...} or [...] a comma ends an unquoted value: put the expression in quotes"
            return Diagnostic(
                diagnostic.code, diagnostic.message, span, diagnostic.severity, (*diagnostic.notes, note)
            )
    return diagnostic


def _check_names(analysis: StrategyAnalysis, root: YamlNode) -> None:
    file = analysis.file
    add = analysis.diagnostics.append
    for name, info in analysis.inputs.items():
        if name in SERIES_NAMES:
            add(
                Diagnostic(
                    "CFG002",
                    f"input name '{name}' is a candle series; choose another name",
                    info.key.span(file),
                )
            )
    alerts = root.get("alerts")
    if alerts is not None and alerts.kind == "map":
        for name, (key, _) in alerts.items.items():
            if name.endswith("_score") and name[: -len("_score")] in alerts.items:
                message = f"alert name '{name}' is reserved for the score of alert '{name[:-6]}'"
                add(Diagnostic("CFG002", message, key.span(file)))
    section = root.get("features")
    rules = set(_rules(root))
    if section is None or section.kind != "map":
        return
    for name, (key, _) in section.items.items():
        if name in analysis.inputs:
            message = f"feature name '{name}' is already an input's name"
        elif name in SERIES_NAMES:
            message = f"feature name '{name}' is a candle series; choose another name"
        elif name in rules:
            message = f"feature name '{name}' is reserved for a rule's column; choose another name"
        else:
            continue
        add(Diagnostic("CFG002", message, key.span(file)))


def _check_inputs(analysis: StrategyAnalysis) -> None:
    file = analysis.file
    for info in analysis.inputs.values():
        bounds = info.node.get("range")
        default = info.node.get("default")
        if info.low is not None and info.high is not None and bounds is not None:
            if info.low >= info.high:
                analysis.diagnostics.append(
                    Diagnostic(
                        "CFG002",
                        f"inputs.{info.name}.range: the low end must be below the high end, got {info.range_text()}",
                        bounds.span(file),
                    )
                )
                continue
            if default is not None and not info.low <= float(info.default) <= info.high:
                analysis.diagnostics.append(
                    Diagnostic(
                        "CFG008",
                        f"inputs.{info.name}.default: {_plain(info.default)} is outside its range {info.range_text()}",
                        default.span(file),
                    )
                )
            step = info.node.get("step")
            if step is not None and _number(step.value) and step.value > info.high - info.low:
                analysis.diagnostics.append(
                    Diagnostic(
                        "CFG002",
                        f"inputs.{info.name}.step: {_plain(step.value)} is wider than the range {info.range_text()}",
                        step.span(file),
                    )
                )


def _check_rules(analysis: StrategyAnalysis, model: Strategy, root: YamlNode) -> None:
    file = analysis.file
    add = analysis.diagnostics.append
    entry_key = root.key_node("entry")
    if model.entry.long is None and model.entry.short is None and entry_key is not None:
        add(Diagnostic("CFG003", "entry needs a 'long' or a 'short' rule", entry_key.span(file)))
    for section in ("exit", "fast_exit", "confirm", "score"):
        node = root.get(section)
        for side in SIDES:
            key = node.key_node(side) if node is not None else None
            value = getattr(getattr(model, section), side)
            if key is not None and value and getattr(model.entry, side) is None:
                add(
                    Diagnostic(
                        "CFG002",
                        f"{section}.{side} is never used: there is no entry.{side} rule",
                        key.span(file),
                    )
                )
    for side in SIDES:
        score = getattr(model.score, side)
        spec = root.get("score").get(side) if score is not None else None  # type: ignore[union-attr]
        threshold = spec.get("threshold") if spec is not None else None
        total = sum(signal.weight for signal in score.signals) if score is not None else 0.0
        if score is not None and threshold is not None and score.threshold > total + 1e-12:
            add(
                Diagnostic(
                    "CFG002",
                    f"score.{side}.threshold {_plain(score.threshold)} can never be reached: the weights add up to {_plain(total)}",
                    threshold.span(file),
                )
            )
    stops = root.get("stops")
    stop = model.stops.stop_loss
    if isinstance(stop, float) and stop >= 1 and stops is not None:
        node = stops.get("stop_loss")
        assert node is not None
        add(
            Diagnostic(
                "CFG002", f"stops.stop_loss: must be below 100%, got {format_ratio(stop)}", node.span(file)
            )
        )


def analyse_strategy(document: YamlDocument, registry: Registry) -> StrategyAnalysis:
    """Validate a strategy document (structure, meaning, DSL) with its default inputs."""
    analysis = StrategyAnalysis(document)
    root = document.root
    assert root is not None and root.kind == "map"
    try:
        analysis.model = Strategy.model_validate(root.to_python())
    except ValidationError as exc:
        analysis.diagnostics.extend(validation_diagnostics(exc, root, document.path, Strategy))
    analysis.inputs, analysis.inputs_usable = _read_inputs(root)
    _check_names(analysis, root)
    _check_inputs(analysis)
    if analysis.model is not None:
        _check_rules(analysis, analysis.model, root)
    analysis.plan, dsl_errors = compile_strategy(analysis, registry)
    analysis.diagnostics.extend(dsl_errors)
    return analysis
