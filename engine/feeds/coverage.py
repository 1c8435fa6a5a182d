"""How many candles a backtest judged without a value of a series its rules read (not yet known, or older
than ``max_age``): shown in the summary, since a rule on a missing value is false there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["feed_gaps"]


@dataclass(frozen=True, slots=True)
class _Context:
    candles: pd.DataFrame
    timeframe: str
    user: Any


def feed_gaps(
    strategy: Any, candles_by_pair: Mapping[str, pd.DataFrame], context_for: Any
) -> dict[str, tuple[int, int]]:
    """``name.member`` -> (candles without a value, candles judged), over every pair, after the warm-up,
    for the namespace reads on the strategy's own timeframe."""
    plan = strategy.plan
    reads = {
        (node.args[0], node.args[1]) for node in plan.nodes if node.op == "feed" and node.tf == plan.timeframe
    }
    out: dict[str, tuple[int, int]] = {}
    for name, path in sorted(reads):
        spec = plan.registry.feeds[name]
        missing = total = 0
        for pair, candles in candles_by_pair.items():
            values = np.asarray(
                spec.impl(path, _Context(candles, plan.timeframe, context_for(pair))), dtype=float
            )
            judged = values[min(strategy.warmup, len(values)) :]
            missing += int(np.isnan(judged).sum())
            total += len(judged)
        out[".".join((name, *path))] = (missing, total)
    return out
