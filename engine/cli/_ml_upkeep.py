"""``engine ml retrain`` (train a candidate, promote it by margin) and ``engine ml drift`` (PSI per
feature against the production model's training rows). Both record an event in the store; run them
from a scheduler (cron, systemd timer) as separate processes."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli._options import DataDir, End
from engine.cli.cmd_ml import (
    ModelFile,
    NoFeatureCache,
    Url,
    Workers,
    _fail,
    _guarded,
    _load,
    _run,
    ml_app,
    save_outcome,
)

PARENT_RECORDS = "ENGINE_ML_RETRAIN_CHILD"
CHILD_NICENESS = 10


def _yield_to_the_bots() -> None:
    """Started by `engine run` (its retrain schedule): lower this process's CPU priority, which its
    worker processes inherit, so that on a machine with few cores the bots' candle closes go first."""
    if os.environ.get(PARENT_RECORDS) and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(CHILD_NICENESS)


def _production(url: str | None, name: str, spec: str) -> tuple[Any, Any, str | None]:
    """(registry row, SavedModel, why it cannot be used) of the production version of ``name``."""
    from engine.ml.artifacts import load_artifacts
    from engine.ml.errors import MLError
    from engine.ml.registry import production

    row = _guarded(url, lambda: _run(url, lambda s: production(s, name)))
    if row is None:
        return None, None, None
    try:
        return row, load_artifacts(Path(row.path), checksum=row.checksum, spec_hash=spec), None
    except MLError as exc:
        return row, None, exc.message


def _event(url: str | None, kind: str, message: str, data: dict[str, Any]) -> None:
    from engine.store import EventCategory
    from engine.store.events import record_event

    _guarded(
        url, lambda: _run(url, lambda s: record_event(s, EventCategory.SYSTEM, kind, message, data=data))
    )


@ml_app.command("retrain")
def retrain_command(
    path: ModelFile,
    data: DataDir = None,
    end: End = None,
    workers: Workers = None,
    url: Url = None,
    models_dir: Annotated[
        Path | None, typer.Option("--models-dir", help="Where model files go (default: $ENGINE_HOME/models).")
    ] = None,
    no_feature_cache: NoFeatureCache = False,
) -> None:
    """Train a candidate on the newest candles, compare it with the production model on the latest
    out-of-sample window, and promote it when better by the model file's retrain.margin (promote: auto)."""
    from engine.ml.artifacts import default_models_root
    from engine.ml.errors import MLError
    from engine.ml.identity import spec_hash
    from engine.ml.registry import promote
    from engine.ml.retrain import decide
    from engine.ml.train import train_and_save

    _yield_to_the_bots()
    loaded, pairs = _load(path, data, end, no_feature_cache)
    name, settings = loaded.model.model, loaded.model.retrain
    row, saved, problem = _production(url, name, spec_hash(loaded))
    try:
        outcome = train_and_save(loaded, pairs, models_dir or default_models_root(), workers=workers)
    except (MLError, OSError) as exc:
        # A failed training keeps the current model: say why, record it (unless `engine run` started
        # this process: it records every failure of its child, with this output), exit 1.
        if not os.environ.get(PARENT_RECORDS):
            _event(
                url,
                "ml/retrain_failed",
                f"model {name}: training failed, production model kept: {exc}",
                {"model": name},
            )
        _fail(str(exc))
    _guarded(url, lambda: save_outcome(url, outcome, loaded.model.exchange))
    if problem is not None:
        decision_text, promoted = f"the production version {row.version} cannot be compared: {problem}", False
    else:
        production = None if saved is None else (saved, int(row.data_end))
        decision = decide(outcome, production, pairs, auto=settings.promote == "auto", margin=settings.margin)
        decision_text, promoted = decision.reason, decision.promote
    if promoted:
        _guarded(url, lambda: _run(url, lambda s: promote(s, name, outcome.version, "retrain")))
    verdict = "promoted to production" if promoted else "left as a candidate"
    message = f"model {name}: version {outcome.version} {verdict} ({decision_text})"
    # The pid tells which process trained (engine run starts this command as a child).
    data = {"model": name, "version": outcome.version, "promoted": promoted, "pid": os.getpid()}
    _event(url, "ml/retrain", message, data)
    typer.echo(message)


@ml_app.command("drift")
def drift_command(
    path: ModelFile,
    data: DataDir = None,
    url: Url = None,
    recent: Annotated[
        str, typer.Option("--recent", help="Window of recent candles compared, e.g. 1d.")
    ] = "1d",
    end: End = None,
) -> None:
    """Population stability index of each feature: the production model's training rows against the
    most recent candles before --to (a PSI above 0.25 on any feature records an ml/drift event); then the live
    predictions a running bot stored, scored against the labels realised since (below the model file's
    retrain.min_live_accuracy: an ml/degraded event)."""
    _yield_to_the_bots()
    from dsl.timeframes import parse_duration
    from engine.ml.drift import MAJOR, feature_drift
    from engine.ml.identity import spec_hash

    loaded, pairs = _load(path, data, end)  # --to: as of then (engine run under --replay passes its time)
    name = loaded.model.model
    row, saved, problem = _production(url, name, spec_hash(loaded))
    if row is None or saved is None:
        _fail(problem or f"model '{name}' has no production version: promote one first (engine ml list)")
    import numpy as np

    train_ns = parse_duration(loaded.model.windows.train) * 10**9
    try:
        recent_ns = parse_duration(recent) * 10**9
    except ValueError as exc:
        _fail(str(exc))
    end = max(int(d.times[-1]) for d in pairs)
    train_rows = [d.x[(d.times > row.data_end - train_ns) & (d.times <= row.data_end)] for d in pairs]
    recent_rows = [d.x[d.times > end - recent_ns] for d in pairs]
    found = feature_drift(loaded.feature_names, np.concatenate(train_rows), np.concatenate(recent_rows))
    typer.echo(f"model {name} version {row.version}: feature drift, last {recent} against its training rows")
    for item in found:
        typer.echo(f"  {item.feature:24} PSI {item.psi:7.3f}  {item.level}")
    major = [d.feature for d in found if np.isfinite(d.psi) and d.psi > MAJOR]
    if major:
        message = f"model {name}: major feature drift (PSI > {MAJOR}) in {', '.join(major)}"
        _event(url, "ml/drift", message, {"model": name, "psi": {d.feature: d.psi for d in found}})
        typer.echo(message)
    _live_check(url, loaded, pairs, row.version)


def _live_check(url: str | None, loaded: Any, pairs: Any, version: str) -> None:
    """Score the production version's stored live predictions against the labels realised since, and
    record ml/degraded when the rolling balanced accuracy is below retrain.min_live_accuracy."""
    import numpy as np

    from dsl.timeframes import timeframe_seconds
    from engine.ml.identity import spec_hash
    from engine.ml.live_log import read_live_predictions
    from engine.ml.pit import STORED_MEMBERS
    from engine.ml.tracking import MIN_JUDGED, live_performance, realised_labels

    model, name = loaded.model, loaded.model.model
    spec = spec_hash(loaded)
    frame = _guarded(
        url,
        lambda: _run(
            url,
            lambda s: read_live_predictions(s, name, spec, model.exchange, [d.pair for d in pairs], version),
        ),
    )
    if frame.empty:
        typer.echo(f"live predictions of version {version}: none stored yet (a running bot stores them)")
        return
    tf_ns = timeframe_seconds(model.timeframe) * 10**9
    labels = np.full(len(frame), -1, dtype=np.int64)
    for d in pairs:
        rows = np.flatnonzero(frame["pair"].to_numpy() == d.pair)
        opens = frame["close"].to_numpy(np.int64)[rows] - tf_ns
        labels[rows] = realised_labels(opens, d.times, d.y)
    settings = model.retrain
    perf = live_performance(frame[list(STORED_MEMBERS)].to_numpy(np.float64), labels, settings.live_window)
    typer.echo(
        f"live predictions of version {version}: {perf.predictions} stored, {perf.realised} with a "
        f"realised label, the last {perf.scored} scored (retrain.live_window {settings.live_window})"
    )
    if perf.scored:
        typer.echo(
            f"  accuracy {perf.accuracy:.3f}  balanced accuracy {perf.balanced_accuracy:.3f}  "
            f"log loss {perf.log_loss:.3f}  mean confidence {perf.mean_confidence:.3f}  "
            f"calibration error {perf.calibration_error:.3f}"
        )
    if perf.scored < MIN_JUDGED and settings.min_live_accuracy is not None:
        typer.echo(f"  not judged yet: fewer than {MIN_JUDGED} labelled predictions")
    reason = perf.degraded(settings.min_live_accuracy)
    if reason:
        message = f"model {name}: version {version} degraded: {reason}"
        data = {"model": name, "version": version, **{k: getattr(perf, k) for k in vars(perf)}}
        _event(url, "ml/degraded", message, data)
        typer.echo(message)
