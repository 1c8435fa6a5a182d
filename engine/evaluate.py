"""Evaluate a single DSL expression on a candle file (the engine side of `engine eval`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dsl import Plan, Source, compile_expression
from dsl.errors import Diagnostic, DiagnosticError
from dsl.timeframes import SUPPORTED_TIMEFRAMES, timeframe_seconds

__all__ = ["EvalResult", "evaluate_expression", "infer_timeframe"]


@dataclass(frozen=True)
class EvalResult:
    plan: Plan
    frame: pd.DataFrame  # one column, "value", on the candle index
    timeframe: str


def infer_timeframe(candles: pd.DataFrame, source: str) -> str:
    """The supported timeframe matching the most common spacing of the candles."""
    if len(candles) < 2:
        raise DiagnosticError(
            [Diagnostic("DATA018", "cannot infer the timeframe from fewer than 2 candles; pass --timeframe")]
        )
    steps = np.diff(candles.index.as_unit("s").asi8)
    values, counts = np.unique(steps, return_counts=True)
    step = int(values[np.argmax(counts)])
    for tf in SUPPORTED_TIMEFRAMES:
        if timeframe_seconds(tf) == step:
            return tf
    raise DiagnosticError(
        [
            Diagnostic(
                "DATA018",
                f"{source}: candles are {step} s apart, which is no supported timeframe; pass --timeframe",
            )
        ]
    )


def evaluate_expression(
    expression: str,
    data: str | os.PathLike[str],
    *,
    timeframe: str | None = None,
    inputs: Mapping[str, int | float | bool] | None = None,
) -> EvalResult:
    from engine.data.files import read_candle_file
    from engine.indicators import default_registry

    candles, _notes = read_candle_file(data, timeframe=timeframe)
    timeframe = timeframe or infer_timeframe(candles, str(data))
    plan = compile_expression(Source(expression, "<expr>"), default_registry(), timeframe, inputs or {})
    frame = plan.evaluate(candles)
    return EvalResult(plan, frame[["value"]], timeframe)
