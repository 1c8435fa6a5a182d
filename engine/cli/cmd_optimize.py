"""`engine optimize`: walk-forward Optuna search of a bot's strategy inputs, with an IS/OOS table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli import app
from engine.cli._options import DataDir, End, Profile, Start


@app.command("optimize")
def optimize_command(
    bot: Annotated[Path, typer.Argument(help="Bot file (bots/*.yaml) whose strategy inputs to search.")],
    trials: Annotated[int, typer.Option("--trials", "-n", help="Optuna trials per fold.")] = 100,
    folds: Annotated[int, typer.Option("--folds", help="Walk-forward windows (train, then test).")] = 3,
    train_ratio: Annotated[float, typer.Option("--train-ratio", help="Train share of each window.")] = 0.7,
    anchored: Annotated[
        bool, typer.Option("--anchored", help="Every train part starts at the beginning of the data.")
    ] = False,
    metric: Annotated[
        str, typer.Option("--metric", help="sharpe, sortino, calmar, total_return or profit_factor.")
    ] = "sharpe",
    min_trades: Annotated[
        int, typer.Option("--min-trades", help="Trials with fewer trades in training score as rejected.")
    ] = 10,
    seed: Annotated[
        int, typer.Option("--seed", help="Sampler seed (results repeat exactly with --jobs 1).")
    ] = 42,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", help="Worker processes (default: all cores).", show_default=False),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Search only these inputs (repeatable or comma-separated)."),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Optuna storage URL (postgresql://user:pw@host/db, sqlite:///study.db): workers on several "
            "machines running the same command share each fold's study.",
        ),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option("--study", help="Name prefix of the shared studies (default: optimize-<bot file>)."),
    ] = None,
    data: DataDir = None,
    start: Start = None,
    end: End = None,
    profile: Profile = None,
    write: Annotated[
        bool, typer.Option("--write", help="Write the recommended params into the bot file's params:.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON to this file.")
    ] = None,
) -> None:
    """Search BOT's strategy input ranges with Optuna and validate the best params walk-forward."""
    from rich.console import Console

    from engine.backtest.optimize import OptimizeSettings, default_jobs, optimize_bot, write_bot_params
    from engine.cli._output import fail_with_diagnostics

    names = tuple(n.strip() for item in only or [] for n in item.split(",") if n.strip())
    settings = OptimizeSettings(
        trials=trials,
        folds=folds,
        train_ratio=train_ratio,
        anchored=anchored,
        metric=metric,
        min_trades=min_trades,
        seed=seed,
        jobs=jobs if jobs is not None else default_jobs(),
        only=names,
        storage=storage,
        study=study,
    )
    console = Console()
    try:
        result = _run_with_progress(console, bot, data, start, end, profile, settings, optimize_bot)
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing written", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:  # DiagnosticError and OSError print like a compiler; others are bugs
        fail_with_diagnostics(exc)
    render_optimization(result, console)
    if storage is not None:
        from engine.store.db import display_url

        prefix = study or f"optimize-{bot.stem}"
        console.print(
            f"shared studies {prefix}-fold-1..{folds} in {display_url(storage)} (best of every worker's trials)"
        )
    if json_out is not None:
        json_out.write_text(json.dumps(result_as_json(result), indent=2) + "\n", encoding="utf-8")
        console.print(f"results written to {json_out}")
    if write:
        if result.recommended is None:
            typer.echo(f"error: nothing written to {bot}: {result.recommendation}", err=True)
            raise typer.Exit(1)
        try:
            write_bot_params(bot, result.recommended)
        except Exception as exc:
            fail_with_diagnostics(exc)
        console.print(f"params written to {bot}")


def _run_with_progress(console, bot, data, start, end, profile, settings, optimize_bot) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("optimising"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trials"),
        TimeElapsedColumn(),
    )
    # The bar starts with the first trial, after loading (workers fork before its thread exists).
    state: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = Progress(*columns, console=console, transient=True)
            bar.start()
            state["task"] = bar.add_task("", total=total)
        bar.update(state["task"], completed=done)

    try:
        return optimize_bot(
            bot, data_dir=data, start=start, end=end, profile=profile, settings=settings, progress=progress
        )
    finally:
        if "bar" in state:
            state["bar"].stop()


def _num(value: Any, percent: bool = False, signed: bool = True) -> str:
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if percent:
        return f"{value:+.2%}" if signed else f"{value:.2%}"
    return f"{value:.3f}"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _value(value: Any) -> str:
    if value is None:
        return "-"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _params(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in values.items())


def _verdict(result: Any) -> str:
    ratio = result.degradation
    if ratio is None:
        return "the in-sample metric is not positive: training found no edge to validate"
    if ratio <= 0:
        return "out of sample the metric turns negative: overfit, or no lasting edge"
    if ratio < 0.5:
        return f"out of sample keeps only {ratio:.0%} of the in-sample metric: likely overfit"
    return f"out of sample keeps {ratio:.0%} of the in-sample metric"


def render_optimization(result: Any, console: Any) -> None:
    """The per-fold IS/OOS table, the chained out-of-sample result and the recommendation."""
    from rich.table import Table

    s = result.settings
    metric = s.metric
    mode = "anchored" if s.anchored else "rolling"
    badge = " [bold yellow]SYNTHETIC DATA[/]" if result.synthetic else ""
    console.print(
        f"[bold]{result.bot}[/] · {result.strategy} · {result.timeframe} · {', '.join(result.pairs)}{badge}\n"
        f"{len(result.folds)} fold(s) {mode}, train ratio {s.train_ratio:g} · {s.trials} trials per fold · "
        f"metric {metric} · min {s.min_trades} trades · seed {s.seed} · {result.jobs} job(s)\n"
        f"searching: {'; '.join(p.describe() for p in result.space)}",
        highlight=False,
    )
    edges = [t for f in result.folds for t in (f.window.train_start, f.window.test_start, f.window.test_end)]
    fmt = "%m-%d" if all(t == t.normalize() for t in edges) else "%m-%d %H:%M"
    if len({t.year for t in edges}) > 1:
        fmt = "%Y-" + fmt
    years = "" if fmt.startswith("%Y") else f" ({edges[0].year})"
    table = Table(
        title=f"walk-forward{years}: {metric} in sample (IS, train) vs out of sample (OOS, test)",
        title_justify="left",
    )
    table.add_column("fold", justify="right")
    table.add_column("train", no_wrap=True)
    table.add_column("test", no_wrap=True)
    for name in ("IS", "OOS", "OOS/IS", "IS\ntrades", "OOS\ntrades", "OOS\nreturn"):
        table.add_column(name, justify="right")
    for f in result.folds:
        w = f.window
        is_value, oos_value = _finite(f.in_sample.get(metric)), _finite(f.out_of_sample.get(metric))
        ratio = (
            f"{oos_value / is_value:.2f}"
            if is_value is not None and is_value > 0 and oos_value is not None
            else "-"
        )
        low_trades = int(f.in_sample["trades"]) < s.min_trades
        table.add_row(
            str(w.fold),
            f"{w.train_start:{fmt}}→{w.train_end:{fmt}}",
            f"{w.test_start:{fmt}}→{w.test_end:{fmt}}",
            _num(is_value),
            _num(oos_value),
            ratio,
            f"{f.in_sample['trades']}{' (!)' if low_trades else ''}",
            str(f.out_of_sample["trades"]),
            _num(f.out_of_sample["total_return"], percent=True),
        )
    console.print(table)
    if any(int(f.in_sample["trades"]) < s.min_trades for f in result.folds):
        console.print(
            f"(!) no trial of that fold reached --min-trades {s.min_trades}: its params are the least bad"
        )
    params = Table(title="params: each fold's best, recommended, current", title_justify="left")
    params.add_column("")
    for p in result.space:
        params.add_column(p.name, justify="right")
    params.add_column("rejected trials", justify="right")
    rows = [(f"fold {f.window.fold}", f.best_params, f"{f.rejected}/{f.trials}") for f in result.folds]
    if result.recommended is not None:
        rows.append(("recommended", result.recommended, ""))
    rows.append(("current", result.current, ""))
    for label, values, rejected in rows:
        params.add_row(label, *(_value(values.get(p.name)) for p in result.space), rejected)
    console.print(params)
    summary = Table(title="out of sample, test windows chained", title_justify="left")
    summary.add_column("")
    for name in ("total return", metric, "max drawdown", "trades", "win rate"):
        summary.add_column(name, justify="right")
    for label, m in (("optimised (each fold's best)", result.oos), ("current params", result.baseline_oos)):
        summary.add_row(
            label,
            _num(m["total_return"], percent=True),
            _num(m[metric]) if metric != "total_return" else _num(m[metric], percent=True),
            _num(m["max_drawdown"], percent=True, signed=False),
            str(m["trades"]),
            _num(m["win_rate"], percent=True, signed=False),
        )
    console.print(summary)
    ratio = "-" if result.degradation is None else f"{result.degradation:.2f}"
    console.print(
        f"mean {metric}: in sample {_num(result.mean_in_sample)}, out of sample {_num(result.mean_out_of_sample)}"
        f" · degradation (OOS/IS) {ratio}: {_verdict(result)}",
        highlight=False,
    )
    if result.recommended is not None:
        console.print(
            f"recommended: [bold]{_params(result.recommended)}[/] ({result.recommendation})", highlight=False
        )
    else:
        console.print(f"no recommendation: {result.recommendation}", highlight=False)
    total = sum(f.trials for f in result.folds)
    console.print(
        f"{total} trials in {result.elapsed:.1f} s ({result.trials_per_second:.1f} trials/s, {result.jobs} job(s))",
        highlight=False,
    )


def _plain(value: Any) -> Any:
    import pandas as pd

    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    if value is pd.NaT:
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_as_json(result: Any) -> dict[str, Any]:
    """The optimisation result as plain JSON types (NaN and infinities as null)."""

    def metrics(m: dict[str, Any]) -> dict[str, Any]:
        return {k: _plain(v) for k, v in m.items()}

    return {
        "bot": result.bot,
        "strategy": result.strategy,
        "timeframe": result.timeframe,
        "pairs": result.pairs,
        "settings": {k: getattr(result.settings, k) for k in result.settings.__dataclass_fields__},
        "space": [p.describe() for p in result.space],
        "current": result.current,
        "folds": [
            {
                "fold": f.window.fold,
                "train": [f.window.train_start.isoformat(), f.window.train_end.isoformat()],
                "test": [f.window.test_start.isoformat(), f.window.test_end.isoformat()],
                "best_params": f.best_params,
                "in_sample": metrics(f.in_sample),
                "out_of_sample": metrics(f.out_of_sample),
                "current_out_of_sample": metrics(f.baseline),
                "trials": f.trials,
                "rejected": f.rejected,
            }
            for f in result.folds
        ],
        "out_of_sample": metrics(result.oos),
        "current_out_of_sample": metrics(result.baseline_oos),
        "mean_in_sample": _plain(result.mean_in_sample),
        "mean_out_of_sample": _plain(result.mean_out_of_sample),
        "degradation": _plain(result.degradation),
        "recommended": result.recommended,
        "recommendation": result.recommendation,
        "elapsed_seconds": result.elapsed,
        "trials_per_second": _plain(result.trials_per_second),
        "jobs": result.jobs,
        "synthetic": result.synthetic,
    }
