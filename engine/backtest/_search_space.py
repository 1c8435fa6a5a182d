"""The inputs `engine optimize` searches: every input with a range (on its step grid) and every switch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dsl.errors import Diagnostic, DiagnosticError, did_you_mean
from engine.config import BoolInput, FloatInput, IntInput, LoadedStrategy

__all__ = ["InputValue", "SearchParam", "search_param", "search_space"]

InputValue = int | float | bool


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One searched input: its kind and inclusive range; ``step`` is the grid (None: continuous)."""

    name: str
    kind: str  # int | float | bool
    low: float = 0.0
    high: float = 1.0
    step: float | None = None

    def suggest(self, trial: Any) -> InputValue:
        if self.kind == "bool":
            return bool(trial.suggest_categorical(self.name, [False, True]))
        if self.kind == "int":
            return int(trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1)))
        return self.clean(trial.suggest_float(self.name, self.low, self.high, step=self.step))

    def clean(self, value: Any) -> InputValue:
        """The value as the YAML should hold it: grid floats without binary noise (1.5, not 1.5000000001)."""
        if self.kind == "bool":
            return bool(value)
        if self.kind == "int":
            return int(value)
        if self.step:
            digits = max(0, -math.floor(math.log10(self.step)) + 6)
            return float(round(value, digits))
        return float(f"{value:.6g}")

    def describe(self) -> str:
        if self.kind == "bool":
            return f"{self.name} ∈ {{false, true}}"
        grid = f" step {self.step:g}" if self.step else ""
        return f"{self.name} ∈ [{self.low:g}, {self.high:g}]{grid}"


def _grid_high(low: float, high: float, step: float) -> float:
    """The highest grid point low + k*step that is <= high (Optuna wants the range to fit the grid)."""
    k = math.floor((high - low) / step + 1e-9)
    return low + k * step


def search_param(name: str, spec: BoolInput | IntInput | FloatInput) -> SearchParam | None:
    """The search of one input (a strategy's or a model file's), named ``name``: true/false for a bool,
    its range on its step grid for a number; None for a number without a range (not searched)."""
    if isinstance(spec, BoolInput):
        return SearchParam(name, "bool")
    if spec.range is None:
        return None
    low, high = (float(x) for x in spec.range)
    kind = "int" if isinstance(spec, IntInput) else "float"
    step = None if spec.step is None else float(spec.step)
    if kind == "int" or step is not None:
        high = _grid_high(low, high, step or 1.0)
    return SearchParam(name, kind, low, high, step)


def search_space(strategy: LoadedStrategy, only: Sequence[str] = ()) -> list[SearchParam]:
    """The inputs ``engine optimize`` searches: every input with a range and every switch (or only the
    named ones). Raises a DiagnosticError when nothing is left to search."""
    inputs = strategy.model.inputs
    unknown = [name for name in only if name not in inputs]
    if unknown:
        raise DiagnosticError(
            [
                Diagnostic(
                    "OPT001", f"--only: the strategy has no input '{name}'{did_you_mean(name, inputs)}"
                )
                for name in unknown
            ]
        )
    space: list[SearchParam] = []
    for name, spec in inputs.items():
        if only and name not in only:
            continue
        param = search_param(name, spec)
        if param is not None:
            space.append(param)
        elif only:
            raise DiagnosticError(
                [Diagnostic("OPT001", f"--only: input '{name}' declares no range to search")]
            )
    if not space:
        raise DiagnosticError(
            [
                Diagnostic(
                    "OPT001",
                    f"strategy '{strategy.model.strategy}' declares no input with a range: "
                    "give inputs a `range: [low, high]` to optimise them",
                )
            ]
        )
    return space
