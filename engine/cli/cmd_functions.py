"""``engine functions [NAME]``: the built-in DSL functions, listed by category or one in detail."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli import app


@app.command("functions")
def functions_command(
    name: Annotated[
        str | None, typer.Argument(help="Show this function in detail.", show_default=False)
    ] = None,
    category: Annotated[
        str | None, typer.Option("--category", "-c", help="List only this category (e.g. momentum).")
    ] = None,
) -> None:
    """List the functions rules can call (name, signature, category) and the feeds they can read
    (``NAME.member``: the project's feeds.yaml, models, sentiment), or describe NAME."""
    from pathlib import Path

    from engine.config._project import find_project_root, project_registry
    from engine.indicators._docs import CATEGORIES, render_function, signature

    registry = project_registry(find_project_root(Path.cwd()))
    if name is not None and name.split(".")[0] in registry.feeds and registry.lookup(name) is None:
        feed = registry.feeds[name.split(".")[0]]
        typer.echo(f"{feed.name}.<member>  (members: {', '.join(feed.members())})")
        typer.echo(f"  {feed.doc}")
        if feed.example:
            typer.echo(f"  example: {feed.example}")
        return
    if name is not None:
        spec = registry.lookup(name)
        if spec is None:
            typer.echo(f"error: unknown function '{name}'{registry.suggest(name)}", err=True)
            raise typer.Exit(1)
        typer.echo(render_function(spec, level=1).rstrip())
        return
    specs = sorted(registry.functions.values(), key=lambda s: s.name)
    known = {s.category for s in specs}
    if category is not None and category not in known and category != "feeds":
        typer.echo(f"error: unknown category '{category}' (one of: {', '.join(sorted(known))})", err=True)
        raise typer.Exit(1)
    order = [c for c in CATEGORIES if c in known] + sorted(known - set(CATEGORIES))
    for cat in order:
        if category is not None and cat != category:
            continue
        typer.echo(f"{CATEGORIES.get(cat, cat)} [{cat}]")
        for spec in specs:
            if spec.category == cat:
                typer.echo(f"  {signature(spec)}")
        typer.echo("")
    if category in (None, "feeds") and registry.feeds:
        typer.echo("Feeds: external point-in-time series, read as NAME.member [feeds]")
        for feed_name in sorted(registry.feeds):
            members = ", ".join(registry.feeds[feed_name].members())
            typer.echo(f"  {feed_name}.{{{members}}}")
        typer.echo("")
