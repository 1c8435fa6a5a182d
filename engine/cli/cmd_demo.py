"""`engine demo`: the README's first command runs this after set-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli import app


@app.command("demo")
def demo_command(
    bots: Annotated[Path, typer.Option("--bots", help="Directory of bot files.")] = Path("bots"),
    strategies: Annotated[Path, typer.Option("--strategies", help="Directory of strategy files.")] = Path(
        "strategies"
    ),
) -> None:
    """Validate the example bots and strategies, then backtest every bot on synthetic sample candles."""
    from engine.demo import run_demo

    if not run_demo(bots, strategies).ok:
        raise typer.Exit(1)
