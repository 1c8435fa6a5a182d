"""``engine run`` as one coroutine: open the database, build the feed, run the runtime, show the dashboard.

Shared by the CLI, the tests and ``bench/live.py``."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from pathlib import Path

from engine.runtime.feed import ReplayFeed
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


async def run_engine(options: RunOptions, *, on_runtime=None) -> Runtime:
    """Run until the replay ends or SIGINT/SIGTERM; returns the stopped runtime (for its views)."""
    import pandas as pd

    from engine.data.source import open_source
    from engine.store import create_engine_for, session_factory, upgrade_async

    if options.replay is None:
        raise ValueError(
            "live market data needs the exchange layer (engine/exchanges), which this build does not "
            "have yet: use --replay DIR"
        )
    engine = create_engine_for(options.database_url)
    try:
        await upgrade_async(engine)
        factory = session_factory(engine)
        feed = ReplayFeed(
            open_source(data_dir=options.replay),
            speed=options.speed,
            start=None if options.start is None else pd.Timestamp(options.start, tz="UTC"),
            end=None if options.end is None else pd.Timestamp(options.end, tz="UTC"),
        )
        runtime = Runtime(options.config, factory, feed)
        if on_runtime is not None:
            on_runtime(runtime)
        loop = asyncio.get_running_loop()
        if options.signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, runtime.request_stop)
        dashboard = asyncio.create_task(_dashboard(runtime)) if options.dashboard else None
        try:
            await runtime.run()
        finally:
            if dashboard is not None:
                dashboard.cancel()
            if options.signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        return runtime
    finally:
        await engine.dispose()


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
