"""Check one rule's text in the context of its strategy, with positions relative to that text, so
an editor can underline the exact characters while the user types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dsl import BOOL, NUMBER, Diagnostic, DiagnosticError, Registry, Source, Type, compile_rules
from dsl.parser import parse_expression
from engine.editor.blocks import Block
from engine.editor.convert import block_to_text

__all__ = ["RULE_FILE", "RuleContext", "validate_block", "validate_rule"]

RULE_FILE = "<rule>"  # the file name diagnostics about the edited text carry

InputValue = int | float | bool
Expect = Literal["condition", "number", "any"]
_EXPECTED: dict[str, Type | None] = {"condition": BOOL, "number": NUMBER, "any": None}


@dataclass(frozen=True)
class RuleContext:
    """What a rule can refer to: the strategy's timeframe, its inputs (default values) and its features."""

    timeframe: str
    inputs: Mapping[str, InputValue] = field(default_factory=dict)
    features: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RuleContext:
        """From a strategy document as plain data; lenient, so a half-edited file still gives a context."""
        inputs: dict[str, InputValue] = {}
        raw_inputs = data.get("inputs")
        for name, spec in raw_inputs.items() if isinstance(raw_inputs, Mapping) else ():
            default = spec.get("default") if isinstance(spec, Mapping) else None
            if isinstance(default, bool | int | float):
                inputs[str(name)] = default
        raw_features = data.get("features")
        features = {
            str(name): str(text)
            for name, text in (raw_features.items() if isinstance(raw_features, Mapping) else ())
            if isinstance(text, str | int | float)
        }
        timeframe = data.get("timeframe")
        return cls(str(timeframe) if timeframe is not None else "", inputs, features)

    @classmethod
    def from_file(cls, path: str | Path) -> RuleContext:
        """From a strategy file; raises DiagnosticError when the file cannot be read as YAML."""
        from engine.config import read_yaml_file

        document = read_yaml_file(path)
        if document.root is None or document.root.kind != "map":
            raise DiagnosticError(document.diagnostics or [Diagnostic("CFG002", f"{path}: not a strategy")])
        return cls.from_mapping(document.root.to_python())

    def without_feature(self, name: str) -> RuleContext:
        """The context for editing feature ``name`` itself (it cannot refer to its old text)."""
        return RuleContext(self.timeframe, self.inputs, {k: v for k, v in self.features.items() if k != name})


def validate_rule(
    text: str,
    context: RuleContext,
    *,
    expect: Expect = "condition",
    registry: Registry | None = None,
) -> list[Diagnostic]:
    """Every problem in ``text`` (syntax, names, types, ranges, timeframes); [] when it is valid.

    Spans carry the file name ``<rule>`` with line and column inside ``text`` (1-based). Problems in
    the strategy's own features are not reported here: the file check reports them at their place.
    """
    if registry is None:
        from engine.indicators import default_registry

        registry = default_registry()
    source = Source(text, RULE_FILE)
    try:
        parse_expression(source)
    except DiagnosticError as exc:
        return list(exc.diagnostics)
    features = {
        name: Source(body, f"<feature {name}>")
        for name, body in context.features.items()
        if name not in context.inputs
    }
    try:
        compile_rules(
            features, {"rule": (source, _EXPECTED[expect])}, context.inputs, registry, context.timeframe
        )
    except DiagnosticError as exc:
        own = [d for d in exc.diagnostics if d.span is None or d.span.file == RULE_FILE]
        # A timeframe problem has no span: it is the strategy's, but the rule cannot be checked without it.
        return own or [d for d in exc.diagnostics if d.code == "DSL008" and d.span is None]
    return []


def validate_block(
    block: Block,
    context: RuleContext,
    *,
    expect: Expect = "condition",
    registry: Registry | None = None,
) -> tuple[str, list[Diagnostic]]:
    """The DSL text of ``block`` and its problems (columns refer to that text)."""
    try:
        text = block_to_text(block)
    except DiagnosticError as exc:  # a RawExpr block with a syntax error
        return "", list(exc.diagnostics)
    return text, validate_rule(text, context, expect=expect, registry=registry)
