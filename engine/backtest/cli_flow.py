"""What `engine backtest` does for a person: run each bot, print, export, report, store, compare."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from dsl.errors import DiagnosticError

__all__ = ["compare_stored_runs", "run_backtests", "store_run"]


def store_run(run: Any, database: str | None) -> int:
    """Save a finished run (metrics + trades) in the SQL store; returns its id."""
    from engine.backtest.summary import config_hash, json_metrics
    from engine.store.backtests import save_backtest_run
    from engine.store.db import run_with_session
    from engine.store.records import trades_from_frame

    strategy = run.bot.strategy

    async def work(session: Any) -> int:
        saved = await save_backtest_run(
            session,
            bot_name=run.bot.model.bot,
            config_hash=config_hash(run.bot.text, strategy.text, params=strategy.inputs),
            strategy_name=strategy.model.strategy,
            data_start=run.start.to_pydatetime(),
            data_end=run.end.to_pydatetime(),
            timeframe=run.timeframe,
            pairs=list(run.candles),
            metrics=json_metrics(run.result.metrics),
            trades=trades_from_frame(run.result.trades),
            params=dict(strategy.inputs),
        )
        return int(saved.id)

    return asyncio.run(run_with_session(work, database))


def run_backtests(
    bots: Sequence[Path],
    *,
    data_dir: Path | None,
    start: str | None,
    end: str | None,
    profile: str | None,
    detail: str | None,
    export: Path | None,
    report: Path | None,
    store: bool,
    database: str | None,
    console: Console | None = None,
) -> bool:
    """Run every bot; a bot that fails to load or lacks data is reported and the others still run."""
    from engine.backtest.session import run_bot_backtest
    from engine.backtest.summary import render_summary
    from engine.cli._output import print_diagnostics

    console = console or Console()
    ok = True
    for path in bots:
        with console.status(f"backtesting {path} ..."):
            try:
                run = run_bot_backtest(
                    path, data_dir=data_dir, start=start, end=end, profile=profile, detail=detail
                )
            except DiagnosticError as error:
                print_diagnostics(error)
                ok = False
                continue
        render_summary(run, console)
        if export is not None:
            from engine.backtest.export import export_trades_csv

            export_trades_csv(run.result.trades, export)
            console.print(f"trades written to {export}")
        if report is not None:
            from engine.backtest.report import write_report

            write_report(run, report)
            console.print(f"report written to {report}")
        if store:
            run_id = store_run(run, database)
            console.print(f"stored as run #{run_id} (compare with: engine backtest --compare)")
    return ok


def compare_stored_runs(database: str | None, run_ids: Sequence[int], bot_files: Sequence[str]) -> None:
    """Print stored runs side by side: the given ids, else the latest runs (of the given bots)."""
    from engine.store.backtests import compare_runs, get_backtest_runs, list_backtest_runs
    from engine.store.db import run_with_session

    async def work(session: Any) -> Any:
        if run_ids:
            return await get_backtest_runs(session, list(run_ids))
        names = []
        if bot_files:
            from engine.config import load_bot

            names = [load_bot(path).model.bot for path in bot_files]
        found = []
        for name in names or [None]:
            found.extend(await list_backtest_runs(session, bot_name=name, limit=6))
        return found

    runs = asyncio.run(run_with_session(work, database))
    console = Console()
    if not runs:
        console.print("no stored backtest runs yet: run `engine backtest bots/<bot>.yaml` first")
        return
    comparison = compare_runs(runs)
    table = Table(title="stored backtest runs")
    table.add_column("")
    for label in comparison.labels:
        table.add_column(label, justify="right")
    for name, values in {**comparison.params, **comparison.metrics}.items():
        table.add_row(name.replace("_", " "), *("-" if v is None else _short(v) for v in values))
    console.print(table)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
