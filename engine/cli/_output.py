"""Printing errors the same way for every command: compiler-style diagnostics on stderr, exit code 1."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

import typer

from dsl.errors import DiagnosticError, render_diagnostics


def _read_sources(error: DiagnosticError, known: Mapping[str, str]) -> dict[str, str]:
    sources = dict(known)
    for diagnostic in error.diagnostics:
        file = diagnostic.span.file if diagnostic.span else None
        if file and file not in sources and Path(file).is_file():
            with contextlib.suppress(OSError):
                sources[file] = Path(file).read_text(encoding="utf-8", errors="replace")
    return sources


def print_diagnostics(error: DiagnosticError, sources: Mapping[str, str] | None = None) -> None:
    typer.echo(render_diagnostics(error.diagnostics, _read_sources(error, sources or {})), err=True)


def fail_with_diagnostics(error: BaseException, sources: Mapping[str, str] | None = None) -> None:
    """Print ``error`` for a person and exit 1; unexpected exceptions are re-raised (they are bugs)."""
    if isinstance(error, DiagnosticError):
        print_diagnostics(error, sources)
        raise typer.Exit(1)
    if isinstance(error, OSError):
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1)
    raise error
