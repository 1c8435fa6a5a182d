"""`engine eval`: evaluate one DSL expression on a candle file and print or write the series."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli import app


def _parse_input(text: str) -> tuple[str, int | float | bool]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise typer.BadParameter(f"expected NAME=VALUE, got {text!r}")
    raw = raw.strip()
    if raw.lower() in ("true", "false"):
        return name.strip(), raw.lower() == "true"
    try:
        value: int | float = int(raw)
    except ValueError:
        try:
            value = float(raw)
        except ValueError:
            raise typer.BadParameter(f"{name}: {raw!r} is not a number or true/false") from None
    return name.strip(), value


@app.command("eval")
def eval_command(
    expression: Annotated[str, typer.Argument(help='A DSL expression, e.g. "rsi(close, 14)".')],
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="Candle file: CSV (date,open,high,low,close,volume), Parquet or Feather."
        ),
    ],
    out: Annotated[Path | None, typer.Option("--out", help="Write CSV here instead of printing it.")] = None,
    timeframe: Annotated[
        str | None,
        typer.Option("--timeframe", help="Candle timeframe; by default from the file name or the data."),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="Give a name a constant value: -i fast=12 (repeatable)."),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Print the compiled plan and its warm-up instead of values.")
    ] = False,
) -> None:
    """Evaluate EXPRESSION on every candle of --data; prints `date,value` rows (CSV) in candle order."""
    from engine.cli._output import fail_with_diagnostics
    from engine.evaluate import evaluate_expression

    values = dict(_parse_input(text) for text in inputs or [])
    try:
        result = evaluate_expression(expression, data, timeframe=timeframe, inputs=values)
    except Exception as exc:  # DiagnosticError and data errors print like a compiler; exit 1
        fail_with_diagnostics(exc, sources={"<expr>": expression})
        return
    if explain:
        typer.echo(result.plan.describe())
        return
    if out is None:
        result.frame.to_csv(
            typer.get_text_stream("stdout"), index_label="date", na_rep="", date_format="%Y-%m-%dT%H:%M:%SZ"
        )
    else:
        result.frame.to_csv(out, index_label="date", na_rep="", date_format="%Y-%m-%dT%H:%M:%SZ")
        typer.echo(f"wrote {len(result.frame)} rows to {out}", err=True)
