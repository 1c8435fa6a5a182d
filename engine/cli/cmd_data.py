"""``engine data``: download, import, synthesise and list the candles in the local store.

The store lives in ``$ENGINE_HOME/data`` (default ``./var/data``); see docs/data.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from engine.cli import app

if TYPE_CHECKING:
    from dsl.errors import Diagnostic

data_app = typer.Typer(
    name="data",
    help="Candle data: download from an exchange, import files, generate synthetic samples, list the store.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

_RELATIVE = re.compile(r"^\d+[mhdw]$")
_NOTES_SHOWN = 3


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _time(text: str | None, option: str) -> Any:
    """A UTC timestamp from ISO 8601 text, or ``now`` minus a duration such as ``30d``."""
    import pandas as pd

    if text is None:
        return None
    try:
        if _RELATIVE.match(text.strip()):
            from dsl.timeframes import parse_duration

            return pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=parse_duration(text.strip()))
        value = pd.Timestamp(text)
    except ValueError:
        _fail(f"{option} '{text}' is not a date (use e.g. 2024-01-01, 2024-01-01T12:00 or 30d)")
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")


def _timeframes(text: str) -> list[str]:
    from dsl.errors import did_you_mean
    from dsl.timeframes import SUPPORTED_TIMEFRAMES

    found = _split(text)
    for tf in found:
        if tf not in SUPPORTED_TIMEFRAMES:
            _fail(
                f"unsupported timeframe '{tf}'{did_you_mean(tf, SUPPORTED_TIMEFRAMES)} (supported: {', '.join(SUPPORTED_TIMEFRAMES)})"
            )
    return found


def _pairs(text: str) -> list[str]:
    from engine.data.naming import normalize_pair

    pairs = []
    for pair in _split(text):
        try:
            pairs.append(normalize_pair(pair))
        except ValueError as exc:
            _fail(str(exc))
    if not pairs:
        _fail("no pairs given (e.g. --pairs ETH/BTC,BTC/USDT)")
    return pairs


def _store() -> Any:
    from engine.data.store import CandleStore

    return CandleStore()


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    """Errors and warnings in full (with the CSV line when there is one); gap notes summarised."""
    from dsl.errors import render_diagnostics

    gaps = [d for d in diagnostics if d.code == "DATA010"]
    shown = [d for d in diagnostics if d.code != "DATA010"]
    if shown:
        typer.echo(render_diagnostics(shown, _sources(shown)), err=True)
    for diagnostic in gaps[:_NOTES_SHOWN]:
        typer.echo(diagnostic.headline(), err=True)
    if len(gaps) > _NOTES_SHOWN:
        typer.echo(
            f"  ... and {len(gaps) - _NOTES_SHOWN} more gaps (gaps are kept as gaps, never filled)", err=True
        )


def _sources(diagnostics: Sequence[Diagnostic]) -> dict[str, str]:
    sources: dict[str, str] = {}
    for diagnostic in diagnostics:
        file = diagnostic.span.file if diagnostic.span else None
        if not file or file in sources or not file.lower().endswith(".csv"):
            continue
        path = Path(file)
        if path.is_file() and path.stat().st_size < 64 * 1024 * 1024:
            sources[file] = path.read_text(encoding="utf-8", errors="replace")
    return sources


@data_app.command("list")
def list_command(
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Only this exchange."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the stored candle series, marking synthetic ones."""
    import json

    store = _store()
    entries = store.list(exchange)
    for path in store.unreadable(exchange):
        typer.echo(f"warning: {path}: unreadable candle file (corrupt or not Parquet), left out", err=True)
    if as_json:
        rows = [
            {
                "exchange": e.exchange,
                "pair": e.pair,
                "timeframe": e.timeframe,
                "candles": e.rows,
                "start": e.start.isoformat() if e.start is not None else None,
                "end": e.end.isoformat() if e.end is not None else None,
                "gaps": len(e.gaps),
                "missing_candles": e.missing_candles,
                "synthetic": e.synthetic,
                "source": e.source,
                "path": str(e.path),
            }
            for e in entries
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not entries:
        typer.echo(f"no candles stored in {store.root} (try `engine data synth` or `engine data download`)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Candles in {store.root}", title_justify="left")
    for column in ("exchange", "pair", "tf", "candles", "from", "to", "gaps", "kind", "source"):
        table.add_column(column, justify="right" if column in ("candles", "gaps") else "left")
    for e in entries:
        gaps = f"{len(e.gaps)} ({e.missing_candles} missing)" if e.gaps else "0"
        kind = "[bold yellow]SYNTHETIC[/]" if e.synthetic else "real"
        start = e.start.strftime("%Y-%m-%d %H:%M") if e.start is not None else "-"
        end = e.end.strftime("%Y-%m-%d %H:%M") if e.end is not None else "-"
        table.add_row(e.exchange, e.pair, e.timeframe, f"{e.rows:,}", start, end, gaps, kind, e.source)
    Console(width=160).print(table)


@data_app.command("synth")
def synth_command(
    pairs: str = typer.Option("BTC/USDT,ETH/USDT", "--pairs", "-p", help="Comma-separated pairs."),
    timeframe: str = typer.Option("5m", "--timeframe", "-t", help="Candle timeframe(s), comma-separated."),
    start: str = typer.Option("2024-01-01", "--start", help="First candle (UTC)."),
    end: str = typer.Option("2024-04-01", "--end", help="End of the period (exclusive, UTC)."),
    seed: int = typer.Option(42, "--seed", help="Random seed: the same seed gives the same candles."),
    exchange: str = typer.Option("binance", "--exchange", "-e", help="Store the sample under this exchange."),
    force: bool = typer.Option(False, "--force", help="Replace real candles stored for the same series."),
) -> None:
    """Write deterministic synthetic candles (marked as synthetic) for offline demos and tests."""
    from engine.data.errors import DataError
    from engine.data.synth import synth_candles

    store = _store()
    first, stop = _time(start, "--start"), _time(end, "--end")
    failed = False
    for pair in _pairs(pairs):
        for tf in _timeframes(timeframe):
            try:
                candles = synth_candles(pair, tf, first, stop, seed=seed)
                entry = store.save(
                    exchange, pair, tf, candles, source=f"synth seed={seed}", synthetic=True, replace=force
                )
            except DataError as exc:
                _print_diagnostics(exc.diagnostics)
                failed = True
                continue
            except ValueError as exc:
                _fail(str(exc))
            typer.echo(f"{exchange} {pair} {tf}: {entry.rows:,} synthetic candles -> {entry.path}")
    if failed:
        raise typer.Exit(1)


@data_app.command("import")
def import_command(
    files: list[Path] = typer.Argument(
        ..., help="CSV, CSV.GZ, Feather or Parquet files (e.g. ETH_BTC-5m.csv)."
    ),
    exchange: str = typer.Option("binance", "--exchange", "-e", help="Store under this exchange."),
    pair: str | None = typer.Option(None, "--pair", help="Pair, when the file name does not say it."),
    timeframe: str | None = typer.Option(
        None, "--timeframe", "-t", help="Timeframe, when the name does not say it."
    ),
) -> None:
    """Validate candle files and merge them into the store."""
    from engine.data.errors import DataError
    from engine.data.importer import import_file

    if timeframe is not None:
        _timeframes(timeframe)
    store = _store()
    failed = False
    for file in files:
        try:
            result = import_file(file, store, exchange=exchange, pair=pair, timeframe=timeframe)
        except DataError as exc:
            _print_diagnostics(exc.diagnostics)
            typer.echo(f"{file}: not imported", err=True)
            failed = True
            continue
        except ValueError as exc:
            _fail(str(exc))
        _print_diagnostics(result.diagnostics)
        entry = result.entry
        typer.echo(
            f"{file}: {exchange} {entry.pair} {entry.timeframe}, now {entry.rows:,} candles -> {entry.path}"
        )
    if failed:
        raise typer.Exit(1)


@data_app.command("download")
def download_command(
    exchange: str = typer.Option("binance", "--exchange", "-e", help="ccxt exchange id."),
    pairs: str = typer.Option(
        ..., "--pairs", "-p", help="Comma-separated pairs, e.g. ETH/BTC,BTC/USDT or XRP/USDT:USDT."
    ),
    timeframe: str = typer.Option("5m", "--timeframe", "-t", help="Candle timeframe(s), comma-separated."),
    since: str = typer.Option(
        ..., "--since", help="Start (UTC date, or a duration back from now such as 30d)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="End (exclusive); default: the last closed candle."
    ),
    api_url: str | None = typer.Option(
        None, "--api-url", hidden=True, help="Replace the exchange's API host."
    ),
) -> None:
    """Download closed candles through ccxt into the store (resumes where the last run stopped)."""
    import asyncio

    from engine.data.errors import DataError

    pair_list, timeframes = _pairs(pairs), _timeframes(timeframe)
    first, last = _time(since, "--since"), _time(until, "--until")
    store = _store()
    failed = False
    try:
        for tf in timeframes:
            results = asyncio.run(_download(exchange, pair_list, tf, first, last, store, api_url))
            for result in results:
                _print_diagnostics(result.diagnostics)
                failed = failed or not result.ok
                gaps = sum(int((b - a).total_seconds()) for a, b in result.gaps)
                note = (
                    f", {len(result.gaps)} gaps ({gaps // 60:,} minutes, exchange outages)"
                    if result.gaps
                    else ""
                )
                state = "up to date" if result.up_to_date else f"{result.candles:,} new candles"
                typer.echo(f"{exchange} {result.pair} {tf}: {state}{note}")
    except DataError as exc:
        _print_diagnostics(exc.diagnostics)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: what was fetched is saved; run the same command to resume", err=True)
        raise typer.Exit(130) from None
    if failed:
        raise typer.Exit(1)


async def _download(
    exchange: str, pairs: list[str], timeframe: str, since: Any, until: Any, store: Any, api_url: str | None
) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.data.download import DownloadEvent, download_candles

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[candles]:>10,} candles"),
        TimeRemainingColumn(),
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}

        def on_event(event: DownloadEvent) -> None:
            if event.kind == "start":
                tasks[event.pair] = progress.add_task(
                    f"{event.pair} {timeframe}", total=max(event.total, 1), candles=0
                )
            elif event.kind in ("advance", "done") and event.pair in tasks:
                # Nothing to fetch (already up to date) shows as a full bar.
                done = event.done if event.total else 1
                progress.update(tasks[event.pair], completed=done, candles=event.candles)
            elif event.kind == "retry":
                progress.console.print(
                    f"[yellow]{event.pair}: {event.message}; retrying in {event.delay:.1f}s[/]"
                )

        return await download_candles(
            exchange, pairs, timeframe, since, until, store=store, api_url=api_url, listener=on_event
        )
