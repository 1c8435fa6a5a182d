"""``engine status``: the running bots as the database knows them (works while another process runs)."""

from __future__ import annotations

import typer

from engine.cli import app

_URL_HELP = "Database URL (default: $ENGINE_DATABASE_URL, else sqlite:///$ENGINE_HOME/engine.db)."


@app.command("status")
def status_command(url: str | None = typer.Option(None, "--url", help=_URL_HELP)) -> None:
    """Bots, mode, open positions, P&L today, last signal and errors, read from the database."""
    import asyncio

    from rich.console import Console
    from sqlalchemy.exc import SQLAlchemyError

    from engine.runtime.status import render_status, views_from_db
    from engine.store import create_engine_for, display_url, session_factory

    async def read():
        engine = create_engine_for(url)
        try:
            return await views_from_db(session_factory(engine, for_reading=True))
        finally:
            await engine.dispose()

    try:
        views = asyncio.run(read())
    except (SQLAlchemyError, OSError) as error:
        reason = getattr(error, "orig", None) or error
        typer.echo(
            f"error: cannot read the database {display_url(url or '')}: {str(reason).splitlines()[0]}",
            err=True,
        )
        raise typer.Exit(1) from None
    if not views:
        typer.echo("no bots in the database yet (start them with `engine run`)")
        return
    Console(width=200).print(render_status(views, title="engine status"))
