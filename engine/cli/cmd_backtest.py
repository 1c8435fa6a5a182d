"""`engine backtest`: run bots over stored or given candles; summary, CSV export, HTML report, stored runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli import app
from engine.cli._options import DataDir, End, Profile, Start


@app.command("backtest")
def backtest_command(
    bots: Annotated[
        list[Path] | None, typer.Argument(help="Bot files (bots/*.yaml).", show_default=False)
    ] = None,
    data: DataDir = None,
    start: Start = None,
    end: End = None,
    profile: Profile = None,
    detail: Annotated[
        str | None,
        typer.Option("--detail", help="Resolve stops on lower-timeframe candles, e.g. 1m (bar magnifier)."),
    ] = None,
    export: Annotated[
        Path | None, typer.Option("--export", help="Write the closed trades to this CSV file.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a self-contained HTML report here.")
    ] = None,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Save the run in the SQL store for --compare.")
    ] = True,
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Instead of running, compare stored runs (the latest, or --run ids)."),
    ] = False,
    runs: Annotated[
        list[int] | None, typer.Option("--run", help="Stored run id to compare (repeatable).")
    ] = None,
    database: Annotated[
        str | None, typer.Option("--db", help="SQL store URL (default: SQLite under $ENGINE_HOME).")
    ] = None,
) -> None:
    """Backtest BOTS with the same strategy and risk code that paper and live trading run."""
    from engine.backtest.cli_flow import compare_stored_runs, run_backtests

    if compare:
        compare_stored_runs(database, runs or [], [str(b) for b in bots or []])
        return
    if not bots:
        raise typer.BadParameter("give at least one bot file, e.g. engine backtest bots/eth_btc_trend.yaml")
    if len(bots) > 1 and (export or report):
        raise typer.BadParameter("--export and --report take one bot at a time")
    ok = run_backtests(
        bots,
        data_dir=data,
        start=start,
        end=end,
        profile=profile,
        detail=detail,
        export=export,
        report=report,
        store=store,
        database=database,
    )
    if not ok:
        raise typer.Exit(1)
