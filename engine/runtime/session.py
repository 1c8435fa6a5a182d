"""``engine run`` as one coroutine: open the database, build the feed, run the runtime, show the dashboard.

Shared by the CLI, the tests and ``bench/live.py``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.runtime.feed import ReplayFeed
from engine.runtime.loader import LoadResult
from engine.runtime.orchestrator import Runtime, RuntimeConfig

__all__ = ["RunOptions", "run_engine"]


@dataclass(frozen=True)
class RunOptions:
    config: RuntimeConfig
    replay: Path | None
    speed: float = 0.0
    start: str | None = None
    end: str | None = None
    database_url: str | None = None
    dashboard: bool = False
    signals: bool = True  # install SIGINT/SIGTERM handlers (off when not on the main thread)
    live: Mapping[str, Any] = field(default_factory=dict)  # LiveFeed options (tests: client_factory, timer)


async def run_engine(options: RunOptions, *, on_runtime=None) -> Runtime:
    """Run until the replay ends or SIGINT/SIGTERM; returns the stopped runtime (for its views).

    Without ``replay`` the bots run on the exchanges' live closed candles (``LiveFeed``): the exchanges
    are reached and the warm-up history fetched before any bot starts; an exchange that cannot be
    reached raises ``MarketDataError`` (a ValueError)."""
    import pandas as pd

    from engine.data.source import open_source
    from engine.store import create_engine_for, session_factory, upgrade_async

    engine = create_engine_for(options.database_url)
    live = None
    try:
        await upgrade_async(engine)
        factory = session_factory(engine)
        loaded: LoadResult | None = None
        if options.replay is None:
            loaded, live = await _live_feed(options)
            feed = live
        else:
            feed = ReplayFeed(
                open_source(data_dir=options.replay),
                speed=options.speed,
                start=None if options.start is None else pd.Timestamp(options.start, tz="UTC"),
                end=None if options.end is None else pd.Timestamp(options.end, tz="UTC"),
            )
        runtime = Runtime(options.config, factory, feed)  # type: ignore[arg-type]
        if live is not None and live.resolve is None:
            live.resolve = lambda pair: _exchange_of(runtime, pair)
        if on_runtime is not None:
            on_runtime(runtime)
        loop = asyncio.get_running_loop()
        if options.signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, runtime.request_stop)
        dashboard = asyncio.create_task(_dashboard(runtime)) if options.dashboard else None
        try:
            with _mode_context(loaded):
                await runtime.run(loaded)
        finally:
            if dashboard is not None:
                dashboard.cancel()
            if options.signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        return runtime
    finally:
        if live is not None:
            await live.close()
        await engine.dispose()


def _exchange_of(runtime: Runtime, pair: str):
    """(source, mode) of a bot the runtime knows that trades ``pair``: a bot added by hot reload may be
    on an exchange the feed did not follow at the start. (The runtime records a bot's configuration
    before starting it.)"""
    from engine.runtime.live_feed import MarketSource

    for bot in getattr(runtime, "loaded", {}).values():
        if pair in bot.model.pairs:
            return MarketSource.of_bot(bot.model), bot.model.exchange.mode
    return None


def _mode_context(loaded: LoadResult | None):
    """Tag the runtime's log lines (its tasks inherit the context) with the bots' mode when they all
    share one; with mixed modes the lines that know theirs (the feed's, per exchange) carry it."""
    from contextlib import nullcontext

    from engine.observability import bind_context

    modes = {bot.model.exchange.mode for bot in loaded.bots.values()} if loaded is not None else set()
    return bind_context(mode=modes.pop()) if len(modes) == 1 else nullcontext()


async def _live_feed(options: RunOptions):
    """Load the bots, connect to their exchanges and fetch every series' warm-up history."""
    from engine.runtime.live_feed import LiveFeed, MarketDataError
    from engine.runtime.loader import load_bots
    from engine.strategy.live import LiveSignals

    config = options.config
    loaded = await asyncio.to_thread(load_bots, config.bots_dir, config.profile)
    if not loaded.bots:
        problems = "; ".join(loaded.errors.values())
        raise MarketDataError(
            f"no valid bot in {config.bots_dir}: no market data to follow"
            + (f" ({problems})" if problems else "")
        )
    warmups: dict[tuple[str, str], int] = {}
    for bot in loaded.bots.values():
        # The bots seed their candle windows with this many candles (LiveSignals.capacity).
        count = LiveSignals(bot.strategy).capacity
        for pair in bot.model.pairs:
            key = (pair, bot.strategy.timeframe)
            warmups[key] = max(warmups.get(key, 0), count)
    feed = LiveFeed.for_bots(loaded.bots.values(), **options.live)
    try:
        await feed.connect()
        await feed.prepare(warmups)
    except BaseException:
        await feed.close()
        raise
    return loaded, feed


async def _dashboard(runtime: Runtime) -> None:
    from rich.live import Live

    from engine.runtime.status import render_status

    def table():
        notes = [f"{path}: {message}" for path, message in runtime.file_errors.items()]
        if runtime.portfolio.halted:
            notes.append("portfolio: daily loss limit reached, new entries halted until the next UTC day")
        return render_status(runtime.views(), title="engine run", notes=notes)

    with Live(table(), refresh_per_second=4, transient=False) as live:
        while True:
            await asyncio.sleep(0.25)
            live.update(table())
