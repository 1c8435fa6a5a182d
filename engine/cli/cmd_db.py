"""``engine db``: create or migrate the state database and show which migration it is at.

The database is ``--url``, else ``$ENGINE_DATABASE_URL``, else the SQLite file ``$ENGINE_HOME/engine.db``;
see docs/state.md.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from engine.cli import app

db_app = typer.Typer(
    name="db",
    help="The state database (SQLite by default, PostgreSQL by URL): migrate it, show its revision.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")

_URL_HELP = "Database URL (default: $ENGINE_DATABASE_URL, else sqlite:///$ENGINE_HOME/engine.db)."


def _guarded[T](url: str | None, action: Callable[[], T]) -> T:
    """Run ``action``; a database that cannot be reached or used becomes a one-line error, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from engine.store import StoreError, default_url, display_url

    shown = display_url(url or default_url())
    try:
        return action()
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
    except (SQLAlchemyError, OSError) as exc:
        # SQLAlchemy wraps the driver's error (refused password, unknown database): show the driver's words.
        reason = getattr(exc, "orig", None) or exc
        typer.echo(f"error: cannot use the database {shown}: {str(reason).splitlines()[0]}", err=True)
    raise typer.Exit(1)


def _missing_sqlite_file(url: str | None) -> bool:
    from pathlib import Path

    from engine.store import resolve_url

    resolved = _guarded(url, lambda: resolve_url(url))
    database = resolved.database or ""
    if (
        resolved.get_backend_name() != "sqlite"
        or database in ("", ":memory:")
        or database.startswith("file:")
    ):
        return False
    return not Path(database).exists()


@db_app.command("upgrade")
def upgrade_command(url: str | None = typer.Option(None, "--url", help=_URL_HELP)) -> None:
    """Create the database or migrate it to the newest schema (safe to run at any time)."""
    from engine.store import default_url, display_url, head_revision, upgrade

    revision = _guarded(url, lambda: upgrade(url))
    typer.echo(f"{display_url(url or default_url())}: at revision {revision} (newest: {head_revision()})")


@db_app.command("current")
def current_command(
    url: str | None = typer.Option(None, "--url", help=_URL_HELP),
    check: bool = typer.Option(
        False, "--check", help="Exit with status 1 unless the database is up to date."
    ),
) -> None:
    """Show the migration the database is at and whether it is up to date."""
    from engine.store import current_revision, default_url, display_url, head_revision

    shown = display_url(url or default_url())
    head = head_revision()
    # Looking must not create the file.
    revision = None if _missing_sqlite_file(url) else _guarded(url, lambda: current_revision(url))
    if revision is None:
        typer.echo(f"{shown}: no schema yet; run `engine db upgrade`")
    elif revision == head:
        typer.echo(f"{shown}: at revision {revision} (up to date)")
    else:
        typer.echo(f"{shown}: at revision {revision}, newest is {head}; run `engine db upgrade`")
    if check and revision != head:
        raise typer.Exit(1)
