"""``engine ml tune``: Optuna over the learner's parameters, scored by purged walk-forward out-of-sample
balanced accuracy; ``--storage`` shares one study between processes and machines."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli._options import DataDir, End, Start
from engine.cli.cmd_ml import ModelFile, Workers, _fail, _load, ml_app


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
) -> None:
    """Search learner parameters (trees, learning rate, leaves, leaf size, feature fraction, L2; C for
    the logistic learner); prints the best trial and the learner block to paste into the model file."""
    from engine.ml.errors import MLError
    from engine.ml.tune import tune

    loaded, pairs = _load(path, data, end)

    def progress(number: int, score: float) -> None:
        typer.echo(f"trial {number}: balanced accuracy {score:.4f}")

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
        )
    except MLError as exc:
        _fail(str(exc))
    finished = [t for t in result.trials if t.value is not None]
    if not finished:
        _fail("no trial finished (see the errors above)")
    best = result.best_trial
    typer.echo(
        f"study {result.study_name}: {len(finished)} finished trials, best #{best.number}: balanced accuracy {best.value:.4f}"
    )
    typer.echo("learner:")
    typer.echo(f"  type: {loaded.model.learner.type}")
    for key, value in best.params.items():
        typer.echo(f"  {key}: {round(value, 6) if isinstance(value, float) else value}")
    typer.echo("(scored on the same out-of-sample windows it was chosen on: expect less on new data)")
