"""``engine feeds``: list, backfill, import, and check the health of the project's external series."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli import app

feeds_app = typer.Typer(help="External point-in-time series (feeds.yaml): list, fetch, import, status.")
app.add_typer(feeds_app, name="feeds")

ProjectDir = Annotated[
    Path | None,
    typer.Option("--project", help="Folder holding feeds.yaml (default: found from the current folder)."),
]
Url = Annotated[
    str | None,
    typer.Option("--url", help="Database URL (default: $ENGINE_DATABASE_URL, else $ENGINE_HOME/engine.db)."),
]


def _feeds(project: Path | None):
    from engine.config._feeds import load_feeds
    from engine.config._project import find_project_root

    root = find_project_root(project or Path.cwd())
    loaded = load_feeds(root, "feeds.yaml")
    if loaded.diagnostics:
        from dsl import render_diagnostics

        sources = {"feeds.yaml": (root / "feeds.yaml").read_text(errors="replace")}
        typer.echo(render_diagnostics(loaded.diagnostics, sources), err=True)
        raise typer.Exit(1)
    return root, loaded


@feeds_app.command("list")
def list_command(project: ProjectDir = None) -> None:
    """Every feed rules can read: its members (``NAME.member``), sources in fallback order, schedule."""
    from rich.console import Console
    from rich.table import Table

    from engine.feeds.render import format_age as _age

    _, loaded = _feeds(project)
    table = Table(title="feeds")
    for column in ("feed", "members", "sources", "refresh", "max_age", "lag", "history"):
        table.add_column(column)
    for name, feed in sorted(loaded.feeds.items()):
        table.add_row(
            name,
            ", ".join(feed.members),
            " > ".join(k.name for k in feed.kinds),
            _age(feed.refresh_s),
            _age(feed.max_age_s),
            _age(feed.lag_s) if feed.lag_s else "-",
            "yes" if feed.kinds[0].history else "recorded live",
        )
    Console(width=200).print(table)


@feeds_app.command("fetch")
def fetch_command(
    names: Annotated[list[str] | None, typer.Argument(help="Feeds to fetch (default: all).")] = None,
    project: ProjectDir = None,
    url: Url = None,
) -> None:
    """Backfill history and fetch the newest values; resumes where the store stops (a second run only
    asks for what is missing). A failing source is reported and the next source of its chain tried."""
    import asyncio

    from rich.progress import Progress

    from engine.feeds.service import FeedService
    from engine.store import create_engine_for, session_factory, upgrade_async

    root, loaded = _feeds(project)
    wanted = names or [n for n, f in sorted(loaded.feeds.items()) if f.kinds[0].history]
    unknown = [n for n in wanted if n not in loaded.feeds]
    if unknown:
        from dsl.errors import did_you_mean

        typer.echo(f"error: unknown feed '{unknown[0]}'{did_you_mean(unknown[0], loaded.feeds)}", err=True)
        raise typer.Exit(2)

    async def run() -> int:
        engine = create_engine_for(url)
        await upgrade_async(engine)
        service = FeedService(loaded, session_factory(engine), root=root)
        failed = 0
        try:
            with Progress(transient=False) as progress:
                task = progress.add_task("feeds", total=len(wanted))
                for name in wanted:
                    progress.update(task, description=f"{name}")
                    result = await service.refresh(name, backfill=True)
                    progress.advance(task)
                    used = " > ".join(result.used) or "none"
                    line = f"{name}: +{result.added} observations (from {used})"
                    if result.errors:
                        line += "; failed: " + "; ".join(result.errors.values())
                    if result.missing:
                        failed += 1
                        line += f"; missing: {', '.join(result.missing)}"
                    progress.console.print(line, soft_wrap=True, markup=False)
        finally:
            await service.aclose()
            await engine.dispose()
        return failed

    failed = asyncio.run(run())
    if failed:
        raise typer.Exit(1)


@feeds_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet: time, optional available_at, value columns.")],
    feed: Annotated[str, typer.Option("--feed", help="The namespace rules read it as (FEED.column).")],
    lag: Annotated[
        str | None, typer.Option("--lag", help="Without available_at: known this long after time.")
    ] = None,
    url: Url = None,
) -> None:
    """Import a series of your own. Without an ``available_at`` column each value counts as known at its
    time plus ``--lag``. Declare it in feeds.yaml (``source: file``) so rules can name it."""
    import asyncio

    from dsl.timeframes import parse_duration
    from engine.feeds.sources.file import read_series_file
    from engine.feeds.store import write_observations
    from engine.store import create_engine_for, session_factory, upgrade_async

    try:
        imported = read_series_file(file, feed, lag_s=float(parse_duration(lag)) if lag else 0.0)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    async def run() -> int:
        engine = create_engine_for(url)
        try:
            await upgrade_async(engine)
            async with session_factory(engine)() as session, session.begin():
                return await write_observations(session, imported.observations)
        finally:
            await engine.dispose()

    added = asyncio.run(run())
    typer.echo(
        f"{feed}: {', '.join(imported.columns)}: {len(imported.observations)} values read, {added} new, "
        f"{imported.skipped} rows skipped (missing or malformed)"
    )


@feeds_app.command("status")
def status_command(project: ProjectDir = None, url: Url = None) -> None:
    """Each feed's freshness and each source's health (last success, last error, calls, failures)."""
    import asyncio

    from rich.console import Console

    from engine.feeds.render import render_feed_status
    from engine.feeds.status import feed_overview
    from engine.store import create_engine_for, session_factory, upgrade_async

    _, loaded = _feeds(project)

    async def read():
        engine = create_engine_for(url)
        try:
            await upgrade_async(engine)
            return await feed_overview(session_factory(engine, for_reading=True), loaded)
        finally:
            await engine.dispose()

    feeds, sources = asyncio.run(read())
    console = Console(width=200)
    for table in render_feed_status(feeds, sources):
        console.print(table)


@feeds_app.command("synth")
def synth_command(
    start: Annotated[str, typer.Option("--from", help="First day (UTC).")] = "2024-01-01",
    end: Annotated[str, typer.Option("--to", help="Last day (UTC).")] = "2024-03-01",
    seed: Annotated[int, typer.Option("--seed")] = 7,
    url: Url = None,
) -> None:
    """GENERATED history of fear_greed.value, btc.dominance and spx.close (seeded, stored with source
    "generated", not market data): for demos and trying strategies offline."""
    from engine.feeds.synth import store_generated_feeds

    count, added = store_generated_feeds(start, end, url=url, seed=seed)
    typer.echo(f"generated feed data (not market data): {count} observations, {added} new")


@feeds_app.command("record")
def record_command(
    pairs: Annotated[
        list[str],
        typer.Argument(help="Pairs to follow, as EXCHANGE:BASE/QUOTE (binance:ETH/BTC) or BASE/QUOTE."),
    ],
    feeds: Annotated[
        list[str] | None, typer.Option("--feed", help="Feeds to record (default: every live-only feed).")
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--for", help="Stop after this long (e.g. 30m, 2h); default: until Ctrl-C.")
    ] = None,
    exchange: Annotated[
        str, typer.Option("--exchange", help="Exchange of pairs given without one.")
    ] = "binance",
    project: ProjectDir = None,
    url: Url = None,
) -> None:
    """Record the series that have no public history (order books, trades) for PAIRS into the store, so
    backtests can use them later. `engine run` records what its bots read by itself."""
    import asyncio

    from dsl.timeframes import parse_duration
    from engine.feeds.recorder import Recorder, live_feeds
    from engine.feeds.service import FeedService
    from engine.store import create_engine_for, session_factory, upgrade_async

    root, loaded = _feeds(project)
    scopes = tuple(p if ":" in p.split("/")[0] else f"{exchange}:{p}" for p in pairs)
    seconds = float(parse_duration(duration)) if duration else None

    async def run() -> None:
        engine = create_engine_for(url)
        await upgrade_async(engine)
        service = FeedService(loaded, session_factory(engine), root=root)
        names = tuple(feeds) if feeds else live_feeds(service)
        if not names:
            typer.echo("nothing to record: no live-only feed (orderbook, trades) in feeds.yaml", err=True)
            await engine.dispose()
            raise typer.Exit(2)
        recorder = Recorder(service, names, scopes)
        typer.echo(
            f"recording {', '.join(names)} for {', '.join(scopes)}"
            + (f" for {duration}" if duration else "; Ctrl-C stops")
        )
        await recorder.start()
        try:
            if seconds is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(seconds)
        finally:
            await recorder.stop()
            await service.aclose()
            await engine.dispose()
            for name, stats in recorder.stats.items():
                typer.echo(
                    f"{name}: {stats.rounds} rounds, +{stats.added} observations, last error: {stats.last_error or '-'}"
                )

    try:
        asyncio.run(run())
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass
