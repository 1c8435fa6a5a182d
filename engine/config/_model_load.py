"""Load one model file (raising every diagnostic at once)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from dsl import Diagnostic, DiagnosticError, Plan, Registry, Span
from engine.config._model import Model
from engine.config._model_check import compile_features
from engine.config._session import Session, detect_kind
from engine.config._yaml import parse_yaml

__all__ = ["LoadedModel", "load_model", "model_variant"]


@dataclass(frozen=True)
class LoadedModel:
    """A valid model file: its typed spec and the compiled plan of its features.

    ``plan.evaluate(candles)`` returns one float column per feature, named as in the file."""

    path: Path
    file: str  # as shown in messages
    text: str
    model: Model
    plan: Plan

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.model.features)


def load_model(
    path: str | Path, *, registry: Registry | None = None, relative_to: Path | None = None
) -> LoadedModel:
    """Load, validate and compile a model file; raises :class:`DiagnosticError` with every problem."""
    session = Session(registry, relative_to)
    path = Path(path)
    document = session.document(path)
    kind, problems = detect_kind(document)
    if kind != "model":
        if kind is not None:
            problems = [
                Diagnostic("CFG002", f"this is a {kind} file, not a model", Span.point(document.path, 1, 1))
            ]
        raise DiagnosticError([*document.diagnostics, *problems])
    analysis = session.model(path)
    diagnostics = [*document.diagnostics, *analysis.diagnostics]
    if diagnostics or analysis.model is None or analysis.plan is None:
        raise DiagnosticError(diagnostics or [Diagnostic("CFG002", "invalid model", None)])
    return LoadedModel(path, document.path, document.text, analysis.model, analysis.plan)


def model_variant(loaded: LoadedModel, values: Mapping[str, int | float | bool]) -> LoadedModel:
    """The model with some inputs set to other values (a tuning trial): its features compiled again,
    and the values recorded as the inputs' defaults (so the spec hash and metadata tell them)."""
    inputs = loaded.model.inputs
    unknown = [name for name in values if name not in inputs]
    if unknown:
        raise DiagnosticError(
            [
                Diagnostic("CFG002", f"model '{loaded.model.model}' has no input '{name}'", None)
                for name in unknown
            ]
        )
    every = {name: spec.default for name, spec in inputs.items()} | dict(values)
    plan, errors = compile_features(parse_yaml(loaded.text, loaded.file), loaded.plan.registry, every)
    if errors or plan is None:
        raise DiagnosticError(errors or [Diagnostic("CFG002", "invalid model", None)])
    updated = {name: spec.model_copy(update={"default": every[name]}) for name, spec in inputs.items()}
    return replace(loaded, model=loaded.model.model_copy(update={"inputs": updated}), plan=plan)
