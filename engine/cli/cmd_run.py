"""``engine run BOTS_DIR``: run every bot of a directory until stopped (see docs/runtime.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from engine.cli import app
from engine.cli._options import End, Profile, Start

_URL_HELP = "Database URL (default: $ENGINE_DATABASE_URL, else sqlite:///$ENGINE_HOME/engine.db)."


@app.command("run")
def run_command(
    bots_dir: Path = typer.Argument(
        Path("bots"), help="Directory of bot files (every *.yaml not starting with _)."
    ),
    replay: Path | None = typer.Option(
        None,
        "--replay",
        help="Play the candle files of this directory through the live path (paper fills). "
        "Without it the bots follow the closed candles of their exchanges (public data, no key).",
    ),
    speed: float = typer.Option(
        0.0, "--speed", min=0.0, help="Replay at N times real time; 0 = as fast as possible."
    ),
    strategies_dir: Path | None = typer.Option(
        None,
        "--strategies",
        help="Strategy directory to watch for hot reload (default: ../strategies beside BOTS_DIR).",
    ),
    watch: bool = typer.Option(True, "--watch/--no-watch", help="Hot reload changed bot and strategy files."),
    dashboard: bool | None = typer.Option(
        None,
        "--dashboard/--no-dashboard",
        help="Live console table (default: when the output is a terminal).",
    ),
    max_exposure: float | None = typer.Option(
        None,
        "--max-exposure",
        help="Portfolio: open positions of all bots at most this ratio of their capital.",
    ),
    max_open_trades: int | None = typer.Option(
        None, "--max-open-trades", help="Portfolio: at most this many open positions over all bots."
    ),
    daily_loss_limit: float | None = typer.Option(
        None,
        "--daily-loss-limit",
        help="Portfolio: halt new entries in every bot after losing this ratio today.",
    ),
    profit_lock_at: float | None = typer.Option(
        None,
        "--profit-lock-at",
        help="Portfolio profit lock: arm once all bots together gained this ratio over their capital.",
    ),
    profit_lock_keep: float | None = typer.Option(
        None,
        "--profit-lock-keep",
        help="Portfolio profit lock: once armed, no new entries while the gain is below this ratio.",
    ),
    start: Start = None,
    end: End = None,
    profile: Profile = None,
    url: str | None = typer.Option(None, "--url", help=_URL_HELP),
    lease_ttl: float = typer.Option(
        30.0, "--lease-ttl", min=1.0, help="Seconds a killed engine keeps its lease."
    ),
    retry_backoff: float = typer.Option(
        0.5, "--retry-backoff", min=0.0, help="First retry delay after a bot fails."
    ),
    refresh_feeds: bool = typer.Option(
        True,
        "--feeds/--no-feeds",
        help="Refresh the feeds the bots' rules read (feeds.yaml) on their schedules; never on a --replay, "
        "which reads what the store recorded.",
    ),
) -> None:
    """Run the bots of BOTS_DIR on their exchanges' live closed candles (or a --replay directory): one task
    per bot, shared portfolio risk, state in the database. Portfolio limits given here win over those an
    ADMIN sets in the web app (PUT /config/risk); the ones left out are the web app's to set."""
    import asyncio
    import logging
    import os
    import sys

    from rich.console import Console

    from engine.runtime import PortfolioLimits, RunOptions, RuntimeConfig, render_status, run_engine
    from engine.runtime.live_feed import MarketDataError
    from engine.store import LeaseHeldError

    if not bots_dir.is_dir():
        typer.echo(f"error: {bots_dir}: not a directory of bot files", err=True)
        raise typer.Exit(2)
    if replay is not None and not replay.is_dir():
        typer.echo(f"error: --replay {replay}: data directory not found", err=True)
        raise typer.Exit(2)
    try:
        limits = PortfolioLimits(
            max_exposure, max_open_trades, daily_loss_limit, profit_lock_at, profit_lock_keep
        )
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if strategies_dir is None:
        sibling = bots_dir.resolve().parent / "strategies"
        strategies_dir = sibling if sibling.is_dir() else None
    options = RunOptions(
        config=RuntimeConfig(
            bots_dir=bots_dir,
            strategies_dir=strategies_dir,
            profile=profile,
            limits=limits,
            watch=watch,
            backoff=retry_backoff,
            lease_ttl=lease_ttl,
            refresh_feeds=refresh_feeds,
        ),
        replay=replay,
        speed=speed,
        start=start,
        end=end,
        database_url=url,
        dashboard=sys.stdout.isatty() if dashboard is None else dashboard,
    )
    from engine.cli._logs import start_logging
    from engine.private_files import loose_state_warnings, state_paths
    from engine.store.db import sqlite_path

    start_logging()
    home = Path(os.environ.get("ENGINE_HOME") or "var")
    for warning in loose_state_warnings(state_paths(home, sqlite_path(url))):
        logging.getLogger("engine").warning(warning)
    try:
        runtime = asyncio.run(run_engine(options))
    except LeaseHeldError as error:
        typer.echo(f"error: another engine is running on this database ({error})", err=True)
        raise typer.Exit(1) from None
    except MarketDataError as error:
        typer.echo(f"error: {error} (to run on stored candles instead, use --replay DIR)", err=True)
        raise typer.Exit(2) from None
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    console = Console(width=max(Console().width, 160))
    notes = [message for message in runtime.file_errors.values()]
    console.print(render_status(runtime.views(), title="engine run: stopped", notes=notes))
