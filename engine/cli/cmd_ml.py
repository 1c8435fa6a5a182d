"""``engine ml``: train models walk-forward, list the registry, promote and roll back versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli import app
from engine.cli._options import DataDir, End, Start

ml_app = typer.Typer(
    name="ml",
    help="Machine-learning models (models/*.yaml): walk-forward training, registry, promotion.",
    no_args_is_help=True,
)
app.add_typer(ml_app, name="ml")

ModelFile = Annotated[Path, typer.Argument(help="The model file, e.g. models/btc_direction.yaml.")]
Url = Annotated[
    str | None,
    typer.Option(
        "--url", help="Database URL (default: $ENGINE_DATABASE_URL, else sqlite:///$ENGINE_HOME/engine.db)."
    ),
]
Workers = Annotated[
    int | None,
    typer.Option("--workers", min=1, help="Processes training windows in parallel (default: the CPUs)."),
]
Export = Annotated[
    Path | None,
    typer.Option("--export", help="Write the walk-forward predictions to this .csv or .parquet file."),
]
Report = Annotated[
    Path | None,
    typer.Option(
        "--report", help="Write an HTML report (metrics, windows, importance, calibration, charts)."
    ),
]
NoFeatureCache = Annotated[
    bool,
    typer.Option(
        "--no-feature-cache",
        help="Compute the features from the candles, without reading or writing the feature store "
        "($ENGINE_HOME/features).",
    ),
]
Fee = Annotated[
    float, typer.Option("--fee", min=0.0, max=0.05, help="Fee per side of the policy result (0.001 = 0.1%).")
]


def _fail(message: str) -> None:
    typer.echo(message if message.startswith("error") else f"error: {message}", err=True)
    raise typer.Exit(1)


def _load(path: Path, data: Path | None, end: str | None, no_cache: bool = False) -> tuple[Any, Any]:
    from dsl import DiagnosticError
    from engine.cli._output import fail_with_diagnostics
    from engine.config import load_model
    from engine.data import DataError, open_source
    from engine.ml.errors import MLError
    from engine.ml.feature_store import FeatureStore
    from engine.ml.pipeline import load_pairs

    try:
        loaded = load_model(path)
        source = open_source(data_dir=data, exchange=loaded.model.exchange)
        store = None if no_cache else FeatureStore()
        pairs = load_pairs(loaded, source, end=end, store=store)
        if store is not None:
            typer.echo(store.summary(), err=True)
        return loaded, pairs
    except (DiagnosticError, OSError) as exc:
        fail_with_diagnostics(exc)
    except (MLError, DataError) as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


class _Bar:
    """A rich progress bar over the training jobs (windows x pairs)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
        )
        self.task: Any = None

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task("models", total=total)
        self.progress.update(self.task, completed=done)


def _export(frame: Any, export: Path | None) -> None:
    from engine.ml.report import export_predictions

    if export is None:
        return
    try:
        export_predictions(frame, export)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {len(frame):,} predictions to {export}")


@ml_app.command("walkforward")
def walkforward_command(
    path: ModelFile,
    data: DataDir = None,
    start: Start = None,
    end: End = None,
    workers: Workers = None,
    export: Export = None,
    fee: Fee = 0.001,
    report: Report = None,
    no_feature_cache: NoFeatureCache = False,
) -> None:
    """Train and predict window by window (purged, embargoed) and print the out-of-sample metrics
    beside a naive baseline; nothing is saved except what --export writes."""
    from engine.ml.errors import MLError
    from engine.ml.identity import model_version, spec_hash
    from engine.ml.pipeline import evaluate, predictions_frame, walkforward
    from engine.ml.report import format_evaluation

    loaded, pairs = _load(path, data, end, no_feature_cache)
    try:
        with _Bar() as bar:
            wf = walkforward(loaded, pairs, start=start, end=end, workers=workers, progress=bar)
        evaluation = evaluate(wf, fee)
    except MLError as exc:
        _fail(str(exc))
    for warning in wf.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(format_evaluation(evaluation, windows=len(wf.windows), models=len(wf.results)))
    version = model_version(spec_hash(loaded), [(d.pair, int(d.times[0]), int(d.times[-1])) for d in pairs])
    _export(predictions_frame(wf, version), export)
    latest = {str(n): r.fitted for n, r in enumerate(wf.latest()) if r.fitted is not None}
    _report(report, loaded, version, wf, evaluation, _importance(latest, loaded.feature_names))


@ml_app.command("train")
def train_command(
    path: ModelFile,
    data: DataDir = None,
    start: Start = None,
    end: End = None,
    workers: Workers = None,
    export: Export = None,
    fee: Fee = 0.001,
    report: Report = None,
    url: Url = None,
    models_dir: Annotated[
        Path | None, typer.Option("--models-dir", help="Where model files go (default: $ENGINE_HOME/models).")
    ] = None,
    no_feature_cache: NoFeatureCache = False,
) -> None:
    """Walk-forward evaluation, then the latest model trained on the newest data, saved (LightGBM text
    + JSON metadata with checksums) and registered as a candidate version."""
    from engine.ml.artifacts import default_models_root
    from engine.ml.errors import MLError
    from engine.ml.report import format_evaluation
    from engine.ml.train import train_and_save

    loaded, pairs = _load(path, data, end, no_feature_cache)
    try:
        with _Bar() as bar:
            outcome = train_and_save(
                loaded,
                pairs,
                models_dir or default_models_root(),
                start=start,
                end=end,
                workers=workers,
                fee=fee,
                progress=bar,
            )
    except MLError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write the model files: {exc}")
    for warning in outcome.walkforward.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(
        format_evaluation(
            outcome.evaluation,
            windows=len(outcome.walkforward.windows),
            models=len(outcome.walkforward.results),
        )
    )
    added = _guarded(url, lambda: save_outcome(url, outcome, loaded.model.exchange))
    typer.echo(f"model {outcome.name} version {outcome.version} saved in {outcome.path} (candidate)")
    typer.echo(f"{added:,} new point-in-time prediction values stored for backtests (ml.{outcome.name}.*)")
    _export(outcome.predictions, export)
    _report(
        report, loaded, outcome.version, outcome.walkforward, outcome.evaluation, outcome.meta["importance"]
    )


SAVE_CHUNK = 2000  # prediction values per write transaction
SAVE_PAUSE_S = 0.02  # between two of them: a waiting writer (a running engine's orders) gets its turn


def save_outcome(url: str | None, outcome: Any, exchange: str) -> int:
    """Store a trained version's out-of-sample predictions, then register the version; returns values
    added.

    The values go in short transactions of ``SAVE_CHUNK`` with a pause between them: in one transaction
    they held SQLite's one writer for as long as the whole insert (0.8 s for the 120,924 values of the
    FreqAI-like benchmark; a write of another process waited 180-230 ms behind the bench's smaller
    retrain), and the orders of an `engine run` whose retrain this is would wait behind it. The version
    is registered last, so a registered version has all its predictions; the values of an interrupted
    run are the same rows a rerun writes (same version), which the store keeps once."""
    import asyncio

    from engine.feeds.store import write_observations
    from engine.ml.pit import prediction_observations
    from engine.ml.registry import register_version
    from engine.store import create_engine_for, session_factory, upgrade_async

    observations = list(
        prediction_observations(
            outcome.predictions, outcome.name, outcome.spec_hash, exchange, outcome.version
        )
    )

    async def work() -> int:
        engine = create_engine_for(url)
        try:
            await upgrade_async(engine)
            sessions = session_factory(engine)
            added = 0
            for start in range(0, len(observations), SAVE_CHUNK):
                async with sessions() as session, session.begin():
                    added += await write_observations(session, observations[start : start + SAVE_CHUNK])
                await asyncio.sleep(SAVE_PAUSE_S)
            async with sessions() as session, session.begin():
                await register_version(session, **outcome.registry_fields())
            return added
        finally:
            await engine.dispose()

    return asyncio.run(work())


def _report(path: Path | None, loaded: Any, version: str, wf: Any, evaluation: Any, importance: Any) -> None:
    if path is None:
        return
    from engine.ml.html_report import write_ml_report

    learner = loaded.model.learner.model_dump(mode="json")
    meta = {
        "version": version,
        "model file": loaded.file,
        "pairs": ", ".join(d.pair for d in wf.pairs),
        "learner": ", ".join(f"{k}={v}" for k, v in learner.items()),
        "windows": f"{len(wf.windows)} x {loaded.model.windows.step} (train {loaded.model.windows.train})",
        "seed": str(loaded.model.seed),
    }
    try:
        write_ml_report(path, f"{loaded.model.model} · walk-forward", meta, wf, evaluation, importance)
    except OSError as exc:
        _fail(f"cannot write the report: {exc}")
    typer.echo(f"wrote the report to {path}")


def _importance(models: dict[str, Any], names: tuple[str, ...]) -> dict[str, float]:
    from engine.ml.train import feature_importance

    return feature_importance(models, names)


def _run(url: str | None, work: Any) -> Any:
    import asyncio

    from engine.store import run_with_session

    return asyncio.run(run_with_session(work, url))


def _guarded(url: str | None, action: Any) -> Any:
    from engine.cli.cmd_db import _guarded as guarded
    from engine.ml.errors import MLError

    try:
        return guarded(url, action)
    except MLError as exc:
        _fail(str(exc))


@ml_app.command("list")
def list_command(
    name: Annotated[str | None, typer.Argument(help="Only this model's versions.")] = None, url: Url = None
) -> None:
    """Every registered version: status, balanced accuracy out of sample, data range, who promoted it."""
    import pandas as pd

    from engine.ml.registry import list_versions

    rows = _guarded(url, lambda: _run(url, lambda s: list_versions(s, name)))
    if not rows:
        typer.echo("no models registered yet: run `engine ml train models/NAME.yaml`")
        return
    typer.echo(
        f"{'model':20} {'version':17} {'status':11} {'bal.acc':>8} {'baseline':>8}  data (UTC)                     promoted"
    )
    for r in rows:
        metrics = r.metrics or {}
        ours = (metrics.get("model") or {}).get("balanced_accuracy")
        base = (metrics.get("baseline") or {}).get("balanced_accuracy")
        span = f"{pd.Timestamp(r.data_start, tz='UTC'):%Y-%m-%d %H:%M} .. {pd.Timestamp(r.data_end, tz='UTC'):%Y-%m-%d %H:%M}"
        promoted = f"{r.promoted_by} {r.promoted_at:%Y-%m-%d %H:%M}" if r.promoted_at else ""
        typer.echo(
            f"{r.name:20} {r.version:17} {r.status:11} {_num(ours):>8} {_num(base):>8}  {span:30} {promoted}"
        )


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "—"


def _by() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


@ml_app.command("promote")
def promote_command(
    name: Annotated[str, typer.Argument(help="The model's name.")],
    version: Annotated[str, typer.Argument(help="The version to serve (see `engine ml list`).")],
    url: Url = None,
) -> None:
    """Make a version the production model (live rules read it); the current one is retired."""
    from engine.ml.artifacts import load_artifacts
    from engine.ml.registry import get_version, promote

    async def work(session: Any) -> Any:
        row = await get_version(session, name, version)
        if row is not None:
            # Never promote files that are missing or were changed since training.
            load_artifacts(Path(row.path), checksum=row.checksum)
        return await promote(session, name, version, _by())

    row = _guarded(url, lambda: _run(url, work))
    typer.echo(f"model {row.name} version {row.version} is now in production")


@ml_app.command("rollback")
def rollback_command(name: Annotated[str, typer.Argument(help="The model's name.")], url: Url = None) -> None:
    """Retire the production version and put back the one promoted before it."""
    from engine.ml.registry import rollback

    row = _guarded(url, lambda: _run(url, lambda s: rollback(s, name, _by())))
    typer.echo(f"model {row.name} rolled back to version {row.version}")


# The other `engine ml` commands live in their own modules and register on ml_app when imported.
from engine.cli import _ml_tune, _ml_upkeep  # noqa: E402,F401
