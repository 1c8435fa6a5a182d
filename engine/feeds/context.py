"""What a namespace implementation learns about the candles it is evaluated on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.feeds.store import SeriesReader, store_reader

__all__ = ["EvalContext", "contexts_for", "prepare_feeds", "uses_external_series"]

log = logging.getLogger(__name__)


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


def prepare_feeds(plan: Any) -> None:
    """Call the ``prepare`` hook of each namespace ``plan`` reads, with the member paths it reads (e.g.
    the production model of each ``ml.<model>`` used). Blocking: a running engine calls it in a worker
    thread when a bot starts. A failure is logged, never raised: the first evaluation tries again."""
    paths: dict[str, dict[tuple[str, ...], None]] = {}
    for node in getattr(plan, "nodes", ()):
        if node.op == "feed":
            paths.setdefault(node.args[0], {})[tuple(node.args[1])] = None
    for name, read in paths.items():
        feed = plan.registry.feeds.get(name)
        if feed is None or feed.prepare is None:
            continue
        try:
            feed.prepare(tuple(read))
        except Exception as exc:  # the bot still starts; its first candle loads what it needs
            log.warning("namespace %s could not be prepared: %s", name, exc)
