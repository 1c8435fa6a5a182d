"""``engine sentiment``: fetch and score news, look at stored items, and relate news to price moves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli import app

sentiment_app = typer.Typer(
    help="News sentiment and market events (sentiment.yaml): fetch, score, news, report, synth, budget."
)
app.add_typer(sentiment_app, name="sentiment")

ProjectDir = Annotated[
    Path | None,
    typer.Option("--project", help="Folder holding sentiment.yaml (default: found from the current folder)."),
]
Url = Annotated[
    str | None,
    typer.Option("--url", help="Database URL (default: $ENGINE_DATABASE_URL, else $ENGINE_HOME/engine.db)."),
]


def _config(project: Path | None):
    from dsl import DiagnosticError, render_diagnostics
    from engine.config._project import find_project_root
    from engine.sentiment.config import SENTIMENT_FILE, load_sentiment_config

    root = find_project_root(project or Path.cwd())
    try:
        return root, load_sentiment_config(root)
    except DiagnosticError as exc:
        path = root / SENTIMENT_FILE
        sources = {str(path): path.read_text(errors="replace")} if path.is_file() else {}
        if any("never the key itself" in d.message for d in exc.diagnostics):
            sources = {}  # the offending line holds a literal key: do not echo it
        typer.echo(render_diagnostics(exc.diagnostics, sources), err=True)
        raise typer.Exit(1) from None


@sentiment_app.command("fetch")
def fetch_command(project: ProjectDir = None, url: Url = None) -> None:
    """Fetch every configured source once: new items are tagged, scored, stored once, sent to the model
    where it pays (when enabled), and written as point-in-time series. A failing source is reported and
    the others go on."""
    import asyncio
    import os

    from engine.sentiment.pipeline import NewsPipeline
    from engine.store import create_engine_for, session_factory, upgrade_async

    root, config = _config(project)

    async def run():
        engine = create_engine_for(url)
        await upgrade_async(engine)
        sessions = session_factory(engine)
        keys = [s.key for s in config.sources if s.key] + ([config.model.key] if config.model.enabled else [])
        store: dict[str, str] = {}
        if any(k.startswith("store:") for k in keys):
            from engine.exchanges.keystore import load_key_store

            store = await load_key_store(sessions, Path(os.environ.get("ENGINE_HOME") or "var"))
        pipeline = NewsPipeline(config, sessions, root=root, store_secrets=store)
        try:
            return await pipeline.ingest()
        finally:
            await pipeline.aclose()
            await engine.dispose()

    try:
        report = asyncio.run(run())
    except Exception as exc:  # a missing key (CFG009) or an unreachable database: say it, exit 1
        from engine.cli._output import fail_with_diagnostics

        fail_with_diagnostics(exc)
        return
    for name, count in report.fetched.items():
        skipped = report.skipped.get(name)
        typer.echo(f"{name}: {count} items" + (f" ({skipped} malformed skipped)" if skipped else ""))
    for name, error in report.errors.items():
        typer.echo(f"{name}: FAILED: {error}", err=True)
    typer.echo(
        f"stored {report.added} new items ({report.same_url} same link, {report.same_story} same story "
        f"from another outlet); {report.observations} observations"
    )
    if report.model:
        typer.echo("model: " + ", ".join(f"{k} {v}" for k, v in sorted(report.model.items())))
    if report.errors and not report.fetched:
        raise typer.Exit(1)


@sentiment_app.command("score")
def score_command(
    text: Annotated[str, typer.Argument(help="A headline.")],
    summary: Annotated[str, typer.Option("--summary", help="The item's summary, if any.")] = "",
    project: ProjectDir = None,
) -> None:
    """Score one headline with the local scorer (offline): score, label, the crypto terms that fired,
    coins and events, beside plain VADER."""
    from engine.sentiment.coins import tag_coins
    from engine.sentiment.events import detect_events
    from engine.sentiment.lexicon import load_lexicon
    from engine.sentiment.scorer import CryptoScorer, plain_vader

    root, config = _config(project)
    scorer = CryptoScorer(load_lexicon(root / config.lexicon) if config.lexicon else None)
    result = scorer.score(text, summary=summary)
    typer.echo(f"score   {result.score:+.4f}  {result.label}")
    typer.echo(f"why     {result.why()}")
    typer.echo(f"coins   {', '.join(tag_coins(text, summary)) or '-'}")
    typer.echo(f"events  {', '.join(detect_events(text, summary)) or '-'}")
    typer.echo(f"VADER   {plain_vader().polarity_scores(text)['compound']:+.4f}  (plain, for comparison)")


@sentiment_app.command("news")
def news_command(
    coin: Annotated[
        str | None, typer.Option("--coin", help="Only items about this coin (btc, eth, ...).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit")] = 30,
    url: Url = None,
) -> None:
    """The newest stored items: time, coins, local and model score, events, source, title."""
    import asyncio
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from engine.sentiment.newsstore import recent_items
    from engine.store import create_engine_for, session_factory, upgrade_async

    async def read():
        engine = create_engine_for(url)
        try:
            await upgrade_async(engine)
            async with session_factory(engine, for_reading=True)() as session:
                return await recent_items(session, coin=coin, limit=limit)
        finally:
            await engine.dispose()

    table = Table(title="news")
    for column in ("published (UTC)", "coins", "local", "model", "events", "source", "title"):
        table.add_column(column)
    for row in asyncio.run(read()):
        when = datetime.fromtimestamp(row.published_at / 1e9, UTC).strftime("%Y-%m-%d %H:%M")
        model = f"{row.model_score:+.2f}" if row.model_score is not None else row.model_status
        table.add_row(
            when,
            ",".join(row.coins),
            f"{row.local_score:+.2f}",
            model,
            ",".join(row.events),
            escape(row.source),
            escape(row.title),
        )
    Console(width=200).print(table)


@sentiment_app.command("report")
def report_command(
    data: Annotated[Path, typer.Option("--data", help="Candle file of the coin (CSV, Parquet, Feather).")],
    coin: Annotated[str, typer.Option("--coin", help="Coin ticker in lower case (btc, eth, all).")],
    timeframe: Annotated[str | None, typer.Option("--timeframe", help="Default: from the file name.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the HTML page here.")] = None,
    horizons: Annotated[str, typer.Option("--horizons", help="Forward horizons in candles.")] = "1,4,12,24",
    project: ProjectDir = None,
    url: Url = None,
) -> None:
    """Correlation of sentiment with forward returns at several horizons, and an event study (mean and
    median forward return per event type, counts, 95% interval), from the stored series. Caveats are
    printed with the numbers."""
    import asyncio

    from engine.data.files import read_candle_file
    from engine.feeds.store import read_series
    from engine.sentiment.events import EVENT_TYPES
    from engine.sentiment.report import analyse
    from engine.sentiment.report_html import render_html, render_text
    from engine.store import create_engine_for, session_factory, upgrade_async

    _, config = _config(project)
    try:
        candles, _ = read_candle_file(data, timeframe=timeframe)
    except Exception as exc:
        from engine.cli._output import fail_with_diagnostics

        fail_with_diagnostics(exc)
        return
    frame_tf = timeframe or candles.attrs.get("timeframe")
    if not frame_tf:
        from engine.data.naming import parse_candle_filename

        named = parse_candle_filename(data.name)
        frame_tf = named.timeframe if named else None
    if not frame_tf:
        typer.echo("error: give --timeframe (it is not in the file name)", err=True)
        raise typer.Exit(2)
    keys = [f"news.{coin}.item", f"news.{coin}.revision", *(f"events.{coin}.{k}" for k in EVENT_TYPES)]

    async def read():
        from sqlalchemy import select

        from engine.store.models import FeedObservation

        engine = create_engine_for(url)
        try:
            await upgrade_async(engine)
            async with session_factory(engine, for_reading=True)() as session:
                series = {key: await read_series(session, key) for key in keys}
                generated = await session.scalar(
                    select(FeedObservation.id)
                    .where(FeedObservation.series == keys[0], FeedObservation.source == "generated")
                    .limit(1)
                )
                return series, generated is not None
        finally:
            await engine.dispose()

    series, generated = asyncio.run(read())
    report = analyse(
        candles,
        frame_tf,
        series,
        coin=coin,
        half_life_s=config.seconds("half_life"),
        max_age_s=config.seconds("max_age"),
        horizons=tuple(int(h) for h in horizons.split(",") if h.strip()),
        generated=generated,
    )
    typer.echo(render_text(report))
    if html is not None:
        html.write_text(render_html(report, candles), encoding="utf-8")
        typer.echo(f"wrote {html}", err=True)


@sentiment_app.command("synth")
def synth_command(
    start: Annotated[str, typer.Option("--from", help="First day (UTC).")] = "2023-12-15",
    end: Annotated[str, typer.Option("--to", help="Last day (UTC).")] = "2024-03-01",
    coin: Annotated[str, typer.Option("--coin")] = "btc",
    seed: Annotated[int, typer.Option("--seed")] = 11,
    url: Url = None,
) -> None:
    """GENERATED news history (seeded, stored with source "generated", not real news): sentiment, counts
    and events for one coin, to try news strategies offline."""
    from engine.sentiment.synth import store_generated_news

    added = store_generated_news(start, end, url=url, coin=coin, seed=seed)
    typer.echo(f"generated news series (not real news): {added} observations added")


@sentiment_app.command("budget")
def budget_command(
    day: Annotated[str | None, typer.Option("--day", help="UTC day YYYY-MM-DD (default: today).")] = None,
    project: ProjectDir = None,
    url: Url = None,
) -> None:
    """The model's spending for a UTC day (calls, tokens, estimated USD) beside the configured limits."""
    import asyncio

    from engine.sentiment.budget import Budget, BudgetLimits, utc_day
    from engine.store import create_engine_for, session_factory, upgrade_async

    _, config = _config(project)
    m = config.model
    limits = BudgetLimits(m.max_calls_per_day, m.max_tokens_per_day, m.max_cost_usd_per_day)

    async def read():
        engine = create_engine_for(url)
        try:
            await upgrade_async(engine)
            return await Budget(session_factory(engine, for_reading=True), limits).spent(day or utc_day())
        finally:
            await engine.dispose()

    calls, tokens, cost = asyncio.run(read())
    typer.echo(f"model budget for {day or utc_day()} (UTC){'' if m.enabled else ' - the model is disabled'}")
    typer.echo(f"  calls   {calls:>10} of {limits.calls}")
    typer.echo(f"  tokens  {tokens:>10} of {limits.tokens}")
    typer.echo(f"  cost    {cost:>10.4f} of {limits.cost_usd:g} USD (estimated)")
