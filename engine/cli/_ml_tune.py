"""``engine ml tune``: Optuna over the learner's parameters and the model file's inputs, scored by purged
walk-forward out-of-sample balanced accuracy; ``--storage`` shares one study between processes and
machines."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli._options import DataDir, End, Start
from engine.cli.cmd_ml import ModelFile, NoFeatureCache, Workers, _fail, _load, ml_app


@ml_app.command("tune")
def tune_command(
    path: ModelFile,
    trials: Annotated[int, typer.Option("--trials", min=1, help="Trials this process runs.")] = 20,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Optuna storage URL shared by several workers (postgresql://user:pw@host/db, sqlite:///study.db).",
        ),
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study name (default: ml-<model>).")] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Sampler seed (default: the model's seed).")
    ] = None,
    data: DataDir = None,
    start: Start = None,
    end: End = None,
    workers: Workers = None,
    no_feature_cache: NoFeatureCache = False,
) -> None:
    """Search learner parameters (trees, learning rate, leaves, leaf size, feature fraction, L2; C for
    the logistic learner) and the model's inputs that have a range (feature windows...); prints the
    best trial and the blocks to paste into the model file."""
    from engine.data import open_source
    from engine.ml.errors import MLError
    from engine.ml.feature_store import FeatureStore
    from engine.ml.pipeline import source_label
    from engine.ml.tune import INPUT_PREFIX, tune

    loaded, pairs = _load(path, data, end, no_feature_cache)
    store = None if no_feature_cache else FeatureStore()
    source = source_label(open_source(data_dir=data, exchange=loaded.model.exchange), loaded.model.exchange)

    def progress(number: int, score: float, params: dict[str, object]) -> None:
        searched = ", ".join(f"{k.removeprefix(INPUT_PREFIX)}={_value(v)}" for k, v in params.items())
        typer.echo(f"trial {number}: balanced accuracy {score:.4f} ({searched})")

    try:
        result = tune(
            loaded,
            pairs,
            trials,
            storage=storage,
            study_name=study,
            seed=seed,
            start=start,
            end=end,
            workers=workers,
            progress=progress,
            store=store,
            source=source,
        )
    except MLError as exc:
        _fail(str(exc))
    if store is not None:  # the trials' feature variants: computed once each, then read
        typer.echo(store.summary(), err=True)
    finished = [t for t in result.trials if t.value is not None]
    if not finished:
        _fail("no trial finished (see the errors above)")
    best = result.best_trial
    typer.echo(
        f"study {result.study_name}: {len(finished)} finished trials, best #{best.number}: balanced accuracy {best.value:.4f}"
    )
    inputs = {k[len(INPUT_PREFIX) :]: v for k, v in best.params.items() if k.startswith(INPUT_PREFIX)}
    if inputs:
        typer.echo("inputs (defaults):")
        for key, value in inputs.items():
            typer.echo(f"  {key}: {_value(value)}")
    typer.echo("learner:")
    typer.echo(f"  type: {loaded.model.learner.type}")
    for key, value in best.params.items():
        if not key.startswith(INPUT_PREFIX):
            typer.echo(f"  {key}: {_value(value)}")
    typer.echo("(scored on the same out-of-sample windows it was chosen on: expect less on new data)")


def _value(value: object) -> object:
    if isinstance(value, bool):
        return str(value).lower()
    return round(value, 6) if isinstance(value, float) else value
