"""``engine status``: the running bots as the database knows them (works while another process runs)."""

from __future__ import annotations

import typer

from engine.cli import app

_URL_HELP = "Database URL (default: $ENGINE_DATABASE_URL, else sqlite:///$ENGINE_HOME/engine.db)."


@app.command("status")
def status_command(url: str | None = typer.Option(None, "--url", help=_URL_HELP)) -> None:
    """Bots, mode, open positions, P&L today, last signal and errors, read from the database."""
    import asyncio
    from pathlib import Path

    from rich.console import Console
    from sqlalchemy.exc import SQLAlchemyError

    from engine.config._feeds import load_feeds
    from engine.config._project import find_project_root
    from engine.feeds.render import render_feed_status
    from engine.feeds.status import feed_overview
    from engine.runtime.status import render_status, views_from_db
    from engine.store import create_engine_for, display_url, session_factory

    feeds_config = load_feeds(find_project_root(Path.cwd()))

    async def read():
        engine = create_engine_for(url)
        try:
            factory = session_factory(engine, for_reading=True)
            views = await views_from_db(factory)
            try:
                feeds = await feed_overview(factory, feeds_config)
            except SQLAlchemyError:  # a store from before feeds existed
                feeds = ([], [])
            return views, feeds
        finally:
            await engine.dispose()

    try:
        views, (feeds, sources) = asyncio.run(read())
    except (SQLAlchemyError, OSError) as error:
        reason = getattr(error, "orig", None) or error
        typer.echo(
            f"error: cannot read the database {display_url(url or '')}: {str(reason).splitlines()[0]}",
            err=True,
        )
        raise typer.Exit(1) from None
    console = Console(width=200)
    if not views:
        typer.echo("no bots in the database yet (start them with `engine run`)")
    else:
        console.print(render_status(views, title="engine status"))
    # Feeds the store holds or whose sources were called: freshness and source health.
    shown = [f for f in feeds if f.observations]
    if shown or sources:
        for table in render_feed_status(shown, sources):
            console.print(table)
