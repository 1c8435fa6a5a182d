"""The out-of-the-box demo: validate the example bots, then backtest each one on deterministic
synthetic candles (no network, no stored data needed) and print and write the results."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from dsl.errors import DiagnosticError

__all__ = ["DemoResult", "engine_home", "run_demo", "write_demo_data"]

DEMO_START = "2024-01-01"
DEMO_DAYS = 60


@dataclass
class DemoResult:
    ok: bool
    data_dir: Path
    reports: list[Path]


def engine_home() -> Path:
    return Path(os.environ.get("ENGINE_HOME", "var"))


def write_demo_data(bot_files: list[Path], target: Path, *, days: int = DEMO_DAYS, seed: int = 42) -> Path:
    """Synthetic candles for every (pair, timeframe) the bots trade, as files a `--data` directory holds."""
    from engine.config import load_bot
    from engine.data.naming import candle_filename
    from engine.data.synth import synth_candles

    target.mkdir(parents=True, exist_ok=True)
    start = pd.Timestamp(DEMO_START, tz="UTC")
    end = start + pd.Timedelta(days=days)
    for path in bot_files:
        bot = load_bot(path)
        for pair in bot.model.pairs:
            file = target / candle_filename(pair, bot.strategy.timeframe)
            if not file.exists():
                candles = synth_candles(pair, bot.strategy.timeframe, start, end, seed=seed)
                candles.to_parquet(file)
    marker = target / "SYNTHETIC.txt"
    marker.write_text("These candles are synthetic (engine demo), not market data.\n")
    return target


def run_demo(
    bots_dir: Path = Path("bots"), strategies_dir: Path = Path("strategies"), console: Console | None = None
) -> DemoResult:
    from engine.backtest.report import write_report
    from engine.backtest.session import run_bot_backtest
    from engine.backtest.summary import render_summary
    from engine.cli._output import print_diagnostics
    from engine.config import validate_report

    console = console or Console()
    home = engine_home()
    bot_files = sorted(bots_dir.glob("*.yaml"))
    files = [*bot_files, *sorted(strategies_dir.glob("*.yaml"))]
    console.rule("1. engine validate")
    report = validate_report([str(f) for f in files])
    if not report.ok:
        print_diagnostics(DiagnosticError(report.diagnostics), report.sources)
        console.print(report.summary())
        return DemoResult(False, home, [])
    console.print(report.summary())

    console.rule("2. sample data")
    data_dir = write_demo_data(bot_files, home / "demo-data")
    console.print(f"synthetic candles ({DEMO_DAYS} days from {DEMO_START}, seeded) in {data_dir}")

    console.rule("3. engine backtest")
    rows = []
    reports: list[Path] = []
    ok = True
    for path in bot_files:
        try:
            run = run_bot_backtest(path, data_dir=data_dir)
        except DiagnosticError as error:
            print_diagnostics(error)
            ok = False
            continue
        run.synthetic = True
        render_summary(run, console)
        report = write_report(run, home / "reports" / f"{run.bot.model.bot}.html")
        reports.append(report)
        metrics = run.result.metrics
        rows.append(
            (
                run.bot.model.bot,
                run.bot.strategy.model.strategy,
                metrics["trades"],
                metrics["total_return"],
                metrics["max_drawdown"],
            )
        )
    table = Table(title="demo: every example bot on synthetic data")
    for column in ("bot", "strategy", "trades", "return", "max drawdown"):
        table.add_column(column, justify="left" if column in ("bot", "strategy") else "right")
    for bot, strategy, trades, total, drawdown in rows:
        table.add_row(bot, strategy, str(trades), f"{total:.2%}", f"{drawdown:.2%}")
    console.print(table)
    if reports:
        console.print(
            f"HTML reports (equity, drawdown, candles with trades, monthly returns): {reports[0].parent}/"
        )
    return DemoResult(ok, data_dir, reports)
