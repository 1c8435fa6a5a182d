"""The out-of-the-box demo on deterministic synthetic candles (no network, no stored data needed).

- :func:`prepare_live_demo` (``engine demo``): validate the example files and write the sample data;
  the command then runs the bots on a replay of it, with the web app, in one process.
- :func:`run_demo` (``engine demo --no-web``): validate, then backtest each bot and print and write the
  results."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from dsl.errors import DiagnosticError

__all__ = [
    "DEMO_REPLAY_FROM",
    "DEMO_SPEED",
    "DemoResult",
    "engine_home",
    "prepare_live_demo",
    "replay_start",
    "run_demo",
    "write_demo_data",
]

DEMO_START = "2024-01-01"
DEMO_DAYS = 60
# The replay leaves the first week to the bots' warm-up history (their candle windows are seeded
# from it), then plays one 5m candle per second: the example bots close their first trades within
# seconds and keep trading for hours of watching.
DEMO_REPLAY_FROM = "2024-01-08"
DEMO_SPEED = 300.0
VALUATION_CURRENCY = "USDT"  # the conversion pairs written beside the bots' pairs (BTC/USDT, ...)


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
    wanted: set[tuple[str, str]] = set()
    for path in bot_files:
        bot = load_bot(path)
        wanted.update((pair, bot.strategy.timeframe) for pair in bot.model.pairs)
    # The dashboard values BTC-quoted bots in USDT at a conversion pair's closes: write those too.
    quotes = {pair.split(":")[0].split("/")[1] for pair, _ in wanted}
    wanted.update((f"{quote}/{VALUATION_CURRENCY}", "5m") for quote in quotes - {VALUATION_CURRENCY})
    for pair, timeframe in sorted(wanted):
        file = target / candle_filename(pair, timeframe)
        if not file.exists():
            synth_candles(pair, timeframe, start, end, seed=seed).to_parquet(file)
    marker = target / "SYNTHETIC.txt"
    marker.write_text("These candles are synthetic (engine demo), not market data.\n")
    return target


def positioning_scopes(bot_files: list[Path]) -> list[tuple[str, str | None, str | None]]:
    """(``exchange:PAIR``, positioning feed name, funding feed name) for every pair of the bots whose
    rules read a feed of source ``positioning`` or ``funding`` in their project's feeds.yaml."""
    from engine.config import load_bot
    from engine.config._feeds import load_feeds
    from engine.config._project import find_project_root

    found: dict[str, tuple[str | None, str | None]] = {}
    for path in bot_files:
        bot = load_bot(path)
        kinds = {name: feed.kinds[0].name for name, feed in load_feeds(find_project_root(path)).feeds.items()}
        read = {node.args[0] for node in bot.strategy.plan.nodes if node.op == "feed"}
        pos = next((n for n in sorted(read) if kinds.get(n) == "positioning"), None)
        funding = next((n for n in sorted(read) if kinds.get(n) == "funding"), None)
        if pos is None and funding is None:
            continue
        for pair in bot.model.pairs:
            scope = f"{bot.model.exchange.name}:{pair}"
            had = found.get(scope, (None, None))
            found[scope] = (had[0] or pos, had[1] or funding)
    return [(scope, pos, funding) for scope, (pos, funding) in sorted(found.items())]


def _write_demo_feeds(bot_files: list[Path] = ()) -> str:  # type: ignore[assignment]
    """Generated feed history (Fear & Greed, BTC dominance, S&P 500, and the futures positioning and
    funding of the pairs whose bots read them) in the engine's store, for the example bots whose rules
    read feeds; marked `generated` wherever it is shown."""
    from engine.feeds.synth import store_generated_feeds

    start = (pd.Timestamp(DEMO_START) - pd.Timedelta(days=14)).strftime("%Y-%m-%d")
    end = (pd.Timestamp(DEMO_START) + pd.Timedelta(days=DEMO_DAYS)).strftime("%Y-%m-%d")
    scopes = positioning_scopes(list(bot_files))
    count, _ = store_generated_feeds(start, end, positioning=scopes)
    names = ["fear_greed", "btc", "spx", *sorted({n for _, *feeds in scopes for n in feeds if n})]
    text = f"generated feed history (not market data): {count} observations of {', '.join(names)}"
    coins = news_coins(list(bot_files))
    if coins:
        from engine.sentiment.synth import store_generated_news

        for coin in coins:
            store_generated_news(start, end, coin=coin)
        text += f"; generated news for {', '.join(coins)} (not real headlines)"
    return text


def news_coins(bot_files: list[Path]) -> list[str]:
    """The coins whose news the bots' rules read (``sentiment.<coin>``, ``news.<coin>``, ``events.<coin>``)."""
    from engine.config import load_bot

    coins: set[str] = set()
    for path in bot_files:
        try:
            plan = load_bot(path).strategy.plan
        except Exception:  # an invalid bot is reported by the validation step
            continue
        for node in plan.nodes:
            if node.op == "feed" and node.args[0] in ("sentiment", "news", "events") and node.args[1]:
                coins.add(node.args[1][0])
    return sorted(coins)


def _validate(files: list[Path], console: Console) -> bool:
    from engine.cli._output import print_diagnostics
    from engine.config import validate_report

    report = validate_report([str(f) for f in files])
    if not report.ok:
        print_diagnostics(DiagnosticError(report.diagnostics), report.sources)
    console.print(report.summary())
    return report.ok


def prepare_live_demo(
    bots_dir: Path = Path("bots"),
    strategies_dir: Path = Path("strategies"),
    console: Console | None = None,
    *,
    start: str = DEMO_REPLAY_FROM,
    speed: float = DEMO_SPEED,
) -> Path | None:
    """Validate the bots and strategies and write the sample candles; returns the data directory to
    replay, or None when a file is invalid (its errors are printed)."""
    console = console or Console()
    bot_files = sorted(bots_dir.glob("*.yaml"))
    console.rule("1. engine validate")
    if not _validate([*bot_files, *sorted(strategies_dir.glob("*.yaml"))], console):
        return None
    console.rule("2. sample data")
    data_dir = write_demo_data(bot_files, engine_home() / "demo-data")
    console.print(f"synthetic candles ({DEMO_DAYS} days from {DEMO_START}, seeded) in {data_dir}")
    console.print(_write_demo_feeds(bot_files))
    console.rule("3. the bots on a replay of it, with the web app")
    pace = f"{speed:g}x real time" if speed > 0 else "full speed"
    console.print(
        f"paper trading from {start} at {pace}; at the default 300x (one 5m candle a second) trades "
        "appear on the dashboard within the first minute. Ctrl-C stops."
    )
    return data_dir


def replay_start(url: str | None = None) -> str:
    """Where the demo's replay starts: :data:`DEMO_REPLAY_FROM`, or on a later run the candle the
    slowest bot stopped at, so resumed bots need not wait (one candle a second) for the replay to
    catch up with their checkpoints."""
    import asyncio

    from sqlalchemy import func, select

    from engine.store.db import run_with_session
    from engine.store.models import EquitySnapshot

    async def slowest(db) -> object:
        latest = (
            select(func.max(EquitySnapshot.time).label("time"))
            .where(EquitySnapshot.bot_id.is_not(None))
            .group_by(EquitySnapshot.bot_id)
            .subquery()
        )
        return await db.scalar(select(func.min(latest.c.time)))

    resumed = asyncio.run(run_with_session(slowest, url))
    first = pd.Timestamp(DEMO_REPLAY_FROM, tz="UTC")
    if resumed is None:
        return DEMO_REPLAY_FROM
    at = pd.Timestamp(resumed)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    return max(first, at).strftime("%Y-%m-%d %H:%M")


def run_demo(
    bots_dir: Path = Path("bots"), strategies_dir: Path = Path("strategies"), console: Console | None = None
) -> DemoResult:
    from engine.backtest.report import write_report
    from engine.backtest.session import run_bot_backtest
    from engine.backtest.summary import render_summary
    from engine.cli._output import print_diagnostics

    console = console or Console()
    home = engine_home()
    bot_files = sorted(bots_dir.glob("*.yaml"))
    console.rule("1. engine validate")
    if not _validate([*bot_files, *sorted(strategies_dir.glob("*.yaml"))], console):
        return DemoResult(False, home, [])

    console.rule("2. sample data")
    data_dir = write_demo_data(bot_files, home / "demo-data")
    console.print(f"synthetic candles ({DEMO_DAYS} days from {DEMO_START}, seeded) in {data_dir}")
    console.print(_write_demo_feeds(bot_files))

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
