"""The second phase for model files: meaning (window lengths against the timeframe and the label) and
the features compiled through the DSL, every error at its file position."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from dsl import Diagnostic, DiagnosticError, Plan, Registry, compile_rules
from dsl.plan import SERIES_NAMES
from dsl.timeframes import SUPPORTED_TIMEFRAMES, parse_duration, timeframe_seconds
from engine.config._errors import validation_diagnostics
from engine.config._model import Model
from engine.config._sources import LineIndex, scalar_source
from engine.config._strategy_check import InputInfo, InputValue, StrategyAnalysis, _check_inputs, _read_inputs
from engine.config._yaml import YamlDocument, YamlNode

__all__ = ["ModelAnalysis", "analyse_model", "compile_features"]


@dataclass
class ModelAnalysis:
    """A model document checked: its typed model and compiled feature plan when valid."""

    document: YamlDocument
    model: Model | None = None
    plan: Plan | None = None
    inputs: dict[str, InputInfo] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _features(root: YamlNode) -> dict[str, YamlNode]:
    section = root.get("features")
    if section is None or section.kind != "map":
        return {}
    return {
        name: node
        for name, (_, node) in section.items.items()
        if node.kind == "scalar" and node.value is not None
    }


def compile_features(
    document: YamlDocument, registry: Registry, values: Mapping[str, InputValue]
) -> tuple[Plan | None, list[Diagnostic]]:
    """The features of a model document compiled with these input values (every input's value:
    the defaults, or a tuning trial's)."""
    root = document.root
    assert root is not None
    timeframe = root.get("timeframe")
    if timeframe is None or timeframe.value not in SUPPORTED_TIMEFRAMES:
        return None, []
    lines = LineIndex(document.text)
    # A feature named like an input or a candle series is reported by the name checks and left out.
    nodes = {
        name: node
        for name, node in _features(root).items()
        if name not in SERIES_NAMES and name not in values
    }
    sources = {
        name: scalar_source(
            node,
            node.value if isinstance(node.value, str) else document.text[node.start : node.end],
            document.path,
            document.text,
            lines,
        )
        for name, node in nodes.items()
    }
    try:
        return compile_rules(sources, {}, dict(values), registry, str(timeframe.value)), []
    except DiagnosticError as exc:
        return None, list(exc.diagnostics)


def _check_names(analysis: ModelAnalysis, root: YamlNode) -> None:
    file = analysis.document.path
    add = analysis.diagnostics.append
    section = root.get("features")
    if section is not None and section.kind == "map":
        for name, (key, _) in section.items.items():
            if name in SERIES_NAMES:
                message = f"feature name '{name}' is a candle series; choose another name"
            elif name in analysis.inputs:
                message = f"feature name '{name}' is already an input's name"
            else:
                continue
            add(Diagnostic("CFG002", message, key.span(file)))
    for name, info in analysis.inputs.items():
        if name in SERIES_NAMES:
            message = f"input name '{name}' is a candle series; choose another name"
            add(Diagnostic("CFG002", message, info.key.span(file)))


def _check_meaning(analysis: ModelAnalysis, model: Model, root: YamlNode) -> None:
    file = analysis.document.path
    add = analysis.diagnostics.append
    seconds = timeframe_seconds(model.timeframe)
    windows = root.get("windows")
    assert windows is not None
    for name in ("train", "step"):
        value = parse_duration(getattr(model.windows, name))
        node = windows.get(name)
        if value % seconds and node is not None:
            add(
                Diagnostic(
                    "CFG002",
                    f"windows.{name}: {getattr(model.windows, name)} is not a whole number of {model.timeframe} candles",
                    node.span(file),
                )
            )
    train = parse_duration(model.windows.train) // seconds
    step = parse_duration(model.windows.step) // seconds
    horizon = model.label.horizon
    purge = model.windows.purge if model.windows.purge is not None else horizon
    label = root.get("label")
    anchor = label.get("horizon") if label is not None else None
    if horizon + purge + model.windows.embargo >= train and anchor is not None:
        add(
            Diagnostic(
                "CFG002",
                f"label.horizon: {horizon} candles plus purge {purge} and embargo {model.windows.embargo} "
                f"leave no training rows in a {model.windows.train} window ({train} candles)",
                anchor.span(file),
            )
        )
    purge_node = windows.get("purge")
    if model.windows.purge is not None and model.windows.purge < horizon and purge_node is not None:
        add(
            Diagnostic(
                "CFG002",
                f"windows.purge: {model.windows.purge} candles is shorter than the label horizon ({horizon}): "
                "training labels would overlap the predicted period (leave purge out to use the horizon)",
                purge_node.span(file),
            )
        )
    node = windows.get("step")
    if step < 1 and node is not None:
        add(Diagnostic("CFG002", "windows.step is shorter than one candle", node.span(file)))
    pairs = root.get("pairs")
    if pairs is not None and len(set(model.pairs)) != len(model.pairs):
        add(Diagnostic("CFG002", "pairs: a pair is listed twice", pairs.span(file)))


def analyse_model(document: YamlDocument, registry: Registry) -> ModelAnalysis:
    """Validate a model document: structure (pydantic), meaning, then the features through the DSL."""
    analysis = ModelAnalysis(document)
    root = document.root
    assert root is not None and root.kind == "map"
    try:
        analysis.model = Model.model_validate(root.to_python())
    except ValidationError as exc:
        analysis.diagnostics.extend(validation_diagnostics(exc, root, document.path, Model))
    analysis.inputs, usable = _read_inputs(root)
    # The range/default/step checks are the strategies' own (they run on a StrategyAnalysis).
    inputs_check = StrategyAnalysis(document, inputs=analysis.inputs)
    _check_inputs(inputs_check)
    analysis.diagnostics.extend(inputs_check.diagnostics)
    _check_names(analysis, root)
    if analysis.model is not None:
        _check_meaning(analysis, analysis.model, root)
    if usable:
        values = {name: info.default for name, info in analysis.inputs.items()}
        analysis.plan, errors = compile_features(document, registry, values)
        analysis.diagnostics.extend(errors)
    return analysis
