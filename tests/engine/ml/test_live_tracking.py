"""Live predictions against reality: a running bot's `ml.<model>.*` stores the production model's
prediction of each candle that just closed, and `engine ml drift` scores the stored predictions as their
labels realise (rolling accuracy, calibration), recording ml/degraded below the configured level."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dsl import compile_expression
from engine.cli import _register, app
from engine.config import load_model
from engine.config._project import project_registry
from engine.feeds.context import EvalContext
from engine.feeds.store import store_reader, write_observations
from engine.ml.identity import spec_hash
from engine.ml.labels import UNKNOWN
from engine.ml.live_log import flush_all, live_observations, read_live_predictions
from engine.ml.pipeline import pair_data
from engine.ml.registry import production, promote, register_version
from engine.ml.tracking import calibration_error, live_performance, realised_labels
from engine.ml.train import train_and_save
from engine.store import run_with_session
from engine.store.events import list_events
from tests.engine.ml.conftest import model_text, walk

_register()
runner = CliRunner()
PAIR = "AAA/BTC"
FIVE = pd.Timedelta(minutes=5)


def test_scores_skip_unrealised_labels_and_measure_calibration():
    proba = np.array([[0.1, 0.0, 0.9], [0.8, 0.0, 0.2], [0.4, 0.0, 0.6], [0.3, 0.0, 0.7]])
    labels = np.array([2, 2, 0, UNKNOWN])
    perf = live_performance(proba, labels, window=10)
    assert (perf.predictions, perf.realised, perf.scored) == (4, 3, 3)
    assert perf.accuracy == pytest.approx(1 / 3) and perf.balanced_accuracy == pytest.approx(0.25)
    # Bins: 0.9 right (gap 0.1), 0.8 wrong (0.8), 0.6 wrong (0.6): (0.1 + 0.8 + 0.6) / 3.
    assert calibration_error(proba[:3], labels[:3]) == pytest.approx(0.5)
    assert live_performance(proba, labels, window=1).scored == 1  # the newest labelled one only
    assert perf.degraded(0.5) is None  # fewer than 100 labelled predictions: not judged
    times = np.array([10, 20, 30, 40], dtype=np.int64)
    assert realised_labels(np.array([20, 25, 30, 50]), times, np.array([0, 1, 2, -1])).tolist() == [
        1,
        -1,
        2,
        -1,
    ]


async def test_a_live_prediction_is_stored_once_and_history_never(tmp_path, monkeypatch, write_model):
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    monkeypatch.setenv("ENGINE_DATABASE_URL", url)
    loaded = write_model(pairs=(PAIR,))
    now = pd.Timestamp.now(tz="UTC").floor("5min")
    candles = walk(41, 8)
    candles.index = pd.date_range(now - len(candles) * FIVE, periods=len(candles), freq=FIVE, name="date")
    trained_until = candles.index[0] + pd.Timedelta(days=7)
    seen = candles[candles.index < trained_until]
    outcome = train_and_save(loaded, [pair_data(loaded, PAIR, seen)], tmp_path / "files", workers=1)

    async def store(session):
        await register_version(session, **outcome.registry_fields())
        await promote(session, "m", outcome.version, "test")

    await run_with_session(store, url)
    plan = compile_expression("ml.m.p_buy", project_registry(tmp_path), "5m")
    context = EvalContext(PAIR, "binance", store_reader(url))
    history = plan.evaluate(candles.iloc[:-12], context)["value"]  # an hour ago: a backtest, not live
    assert not np.isnan(history.iloc[-1])  # predicted by the production model...
    live = plan.evaluate(candles, context)["value"]  # the candle that closed just now
    plan.evaluate(candles, context)  # evaluated again: stored once
    assert flush_all()
    spec = spec_hash(loaded)
    stored = await run_with_session(lambda s: read_live_predictions(s, "m", spec, "binance", [PAIR]), url)
    assert len(stored) == 1  # ...but only the live candle is stored
    row = stored.iloc[0]
    assert row["close"] == (candles.index[-1] + FIVE).value and row["version"] == outcome.version
    assert row["p_buy"] == pytest.approx(live.iloc[-1], abs=1e-6)
    assert row[["p_sell", "p_hold", "p_buy"]].sum() == pytest.approx(1.0, abs=1e-5)


def _project(tmp_path, floor: float | None, window: int) -> tuple[str, list[str]]:
    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    retrain = f"retrain:\n  live_window: {window}\n"
    if floor is not None:
        retrain += f"  min_live_accuracy: {floor}\n"
    (tmp_path / "models" / "m.yaml").write_text(model_text(pairs=(PAIR,)) + retrain)
    # Trained on five days; the sixth comes later, as a running bot's candles.
    walk(5, 6).iloc[: 5 * 288].to_csv(tmp_path / "data" / "AAA_BTC-5m.csv", date_format="%Y-%m-%dT%H:%M:%SZ")
    url = f"sqlite:///{tmp_path / 'e.db'}"
    return url, ["--data", "data", "--url", url]


def _sixth_day(tmp_path) -> None:
    walk(5, 6).to_csv(tmp_path / "data" / "AAA_BTC-5m.csv", date_format="%Y-%m-%dT%H:%M:%SZ")


def _store_live(tmp_path, url, wrong_last: bool) -> tuple[int, int]:
    """Live predictions of the production version for the newest day, as a bot would have stored them,
    all certain: wrong on the last 150 labelled candles and right before (``wrong_last``), or the
    other way round."""
    loaded = load_model(tmp_path / "models" / "m.yaml", relative_to=tmp_path)
    candles = pd.read_csv(tmp_path / "data" / "AAA_BTC-5m.csv", index_col=0, parse_dates=True)
    data = pair_data(loaded, PAIR, candles)
    row = asyncio.run(run_with_session(lambda s: production(s, "m"), url))
    day = np.flatnonzero(data.times > data.times[-1] - 288 * FIVE.value)
    labelled = int((data.y[day] != UNKNOWN).sum())
    observations = []
    for k, i in enumerate(day):
        truth = int(data.y[i]) if data.y[i] != UNKNOWN else 0
        said = (truth + 1) % 3 if (k >= labelled - 150) == wrong_last else truth
        close = int(data.times[i]) + FIVE.value
        observations += live_observations(
            "m", spec_hash(loaded), row.version, "binance", PAIR, close, np.eye(3)[said], close
        )
    asyncio.run(run_with_session(lambda s: write_observations(s, observations), url))
    return len(day), labelled


def test_drift_scores_live_predictions_and_raises_degraded(tmp_path, monkeypatch):
    url, common = _project(tmp_path, floor=0.6, window=150)
    monkeypatch.chdir(tmp_path)
    trained = runner.invoke(
        app, ["ml", "train", "models/m.yaml", *common, "--models-dir", "files", "--workers", "1"]
    )
    assert trained.exit_code == 0, trained.output
    version = trained.output.split("version ")[1].split()[0].strip(":,")
    assert runner.invoke(app, ["ml", "promote", "m", version, "--url", url]).exit_code == 0
    before = runner.invoke(app, ["ml", "drift", "models/m.yaml", *common])
    assert before.exit_code == 0 and "none stored yet" in before.output, before.output
    _sixth_day(tmp_path)
    stored, labelled = _store_live(tmp_path, url, wrong_last=True)
    assert labelled == stored - 6  # the last `horizon` candles' labels have not realised yet
    drift = runner.invoke(app, ["ml", "drift", "models/m.yaml", *common])
    assert drift.exit_code == 0, drift.output
    assert f"{stored} stored, {labelled} with a realised label, the last 150 scored" in drift.output
    assert "accuracy 0.000" in drift.output  # the last 150 labelled predictions were all wrong
    assert (
        "degraded: live balanced accuracy 0.000 over the last 150 labelled predictions is below 0.600"
        in drift.output
    )
    events = asyncio.run(run_with_session(lambda s: list_events(s), url))
    degraded = [e for e in events if e.kind == "ml/degraded"]
    assert len(degraded) == 1 and degraded[0].data["scored"] == 150


def test_a_model_right_on_its_recent_predictions_is_not_degraded(tmp_path, monkeypatch):
    url, common = _project(tmp_path, floor=0.6, window=150)
    monkeypatch.chdir(tmp_path)
    trained = runner.invoke(
        app, ["ml", "train", "models/m.yaml", *common, "--models-dir", "files", "--workers", "1"]
    )
    version = trained.output.split("version ")[1].split()[0].strip(":,")
    assert runner.invoke(app, ["ml", "promote", "m", version, "--url", url]).exit_code == 0
    _sixth_day(tmp_path)
    _store_live(tmp_path, url, wrong_last=False)  # wrong early in the day, right on the last 150
    drift = runner.invoke(app, ["ml", "drift", "models/m.yaml", *common])
    assert drift.exit_code == 0 and "accuracy 1.000" in drift.output and "degraded" not in drift.output, (
        drift.output
    )
    events = asyncio.run(run_with_session(lambda s: list_events(s), url))
    assert not [e for e in events if e.kind == "ml/degraded"]
