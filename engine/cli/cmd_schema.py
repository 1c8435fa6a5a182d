"""`engine schema`: write the JSON Schema files editors use for autocompletion (and the key tables
of docs/config.md), or check that the committed copies are current."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli import app


@app.command("schema")
def schema_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Directory for strategy.schema.json, bot.schema.json and model.schema.json."
        ),
    ] = Path("schema"),
    docs: Annotated[
        Path | None,
        typer.Option("--docs", help="Also regenerate the key tables in this Markdown file (docs/config.md)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when a file is out of date.")
    ] = False,
) -> None:
    """Generate the JSON Schema of strategy, bot and model files from the configuration models."""
    from engine.config._reference import SCHEMA_FILES, schema_text, update_reference, write_schemas

    stale: list[Path] = []
    if check:
        for name in SCHEMA_FILES:
            path = out / name
            if not path.is_file() or path.read_text(encoding="utf-8") != schema_text(name):
                stale.append(path)
    else:
        for path in write_schemas(out):
            typer.echo(f"wrote {path}")
    if docs is not None:
        try:
            current = docs.read_text(encoding="utf-8")
            updated = update_reference(current)
        except (OSError, ValueError) as exc:
            typer.echo(f"error: {docs}: {exc}", err=True)
            raise typer.Exit(1) from None
        if updated != current:
            if check:
                stale.append(docs)
            else:
                docs.write_text(updated, encoding="utf-8")
                typer.echo(f"wrote {docs}")
    if check:
        for path in stale:
            typer.echo(
                f"out of date: {path} (run: engine schema{' --docs ' + str(docs) if docs else ''})", err=True
            )
        raise typer.Exit(1 if stale else 0)
