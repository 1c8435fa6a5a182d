"""`engine validate`: check bots and strategies fully and print every error like a compiler."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from engine.cli import app


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def _masked(sources: dict[str, str], diagnostics: list) -> dict[str, str]:
    """Sources with the text under literal-secret errors (CFG004) replaced by '*', so that printing
    the offending line never prints a key."""
    out = dict(sources)
    for diagnostic in diagnostics:
        span = diagnostic.span
        if diagnostic.code != "CFG004" or span is None or span.file not in out:
            continue
        lines = out[span.file].split("\n")
        if 1 <= span.line <= len(lines):
            line = lines[span.line - 1]
            start, end = span.col - 1, span.end_col - 1 if span.end_line == span.line else len(line)
            lines[span.line - 1] = line[:start] + "*" * max(0, end - start) + line[end:]
            out[span.file] = "\n".join(lines)
    return out


@app.command("validate")
def validate_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Bot, strategy and model files, or directories of them (default: bots/, strategies/, models/)."
        ),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for CI tools.")
    ] = OutputFormat.text,
) -> None:
    """Check every file fully (YAML, keys and values, rules, referenced strategies, params against
    ranges, every profile) and print every error as file:line:col. Exit 0 only when all are valid."""
    from dsl.errors import render_diagnostics
    from engine.config import validate_report

    if not paths:
        paths = [p for p in (Path("bots"), Path("strategies"), Path("models")) if p.is_dir()]
        if not paths:
            typer.echo("error: no files given and no bots/ or strategies/ directory here", err=True)
            raise typer.Exit(2)
    try:
        report = validate_report(paths)
    except RuntimeError as exc:  # the function registry could not be built: not the user's files' fault
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if output is OutputFormat.json:
        errors = [d for d in report.diagnostics if d.severity == "error"]
        payload = {
            "ok": report.ok,
            "summary": report.summary(),
            "files": report.files,
            "error_count": len(errors),
            "diagnostics": [{**d.to_json(), "notes": list(d.notes)} for d in report.diagnostics],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        if report.diagnostics:
            typer.echo(render_diagnostics(report.diagnostics, _masked(report.sources, report.diagnostics)))
        typer.echo(report.summary())
    raise typer.Exit(0 if report.ok else 1)
