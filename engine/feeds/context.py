"""What a namespace implementation learns about the candles it is evaluated on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.feeds.store import SeriesReader, store_reader

__all__ = ["EvalContext", "contexts_for", "uses_external_series"]


@dataclass(slots=True)
class EvalContext:
    """Passed as ``context`` to ``Plan.evaluate``; namespaces read it as ``ctx.user``.

    ``reader`` holds the point-in-time series of this run (backtest: preloaded from the store; live:
    extended by the scheduler), so both go through the same join."""

    pair: str
    exchange: str = "binance"
    reader: SeriesReader = field(default_factory=SeriesReader)

    @property
    def scope(self) -> str:
        return f"{self.exchange}:{self.pair}"


def uses_external_series(plan: Any) -> bool:
    """Whether a compiled plan reads any namespace (feeds, models, sentiment)."""
    return any(node.op == "feed" for node in getattr(plan, "nodes", ()))


def contexts_for(plan: Any, exchange: str, reader: SeriesReader | None = None) -> Callable[[str], Any]:
    """pair -> the EvalContext a plan is evaluated with; None for plans that read no external series
    (so they never touch the store). All pairs share one reader, loaded from the engine's store on
    first use unless one is given."""
    if not uses_external_series(plan):
        return lambda _pair: None
    shared = reader if reader is not None else store_reader()
    return lambda pair: EvalContext(pair, exchange, shared)
