"""Retraining with promotion by margin, and feature drift (PSI) with its event."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.ml.drift import feature_drift, psi
from engine.store import run_with_session
from engine.store.events import list_events
from tests.engine.ml.conftest import model_text, walk

_register()
runner = CliRunner()
PAIRS = ("AAA/BTC", "BBB/BTC")


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 20_000)
    assert psi(base, rng.normal(0, 1, 5_000)) < 0.01
    assert 0.1 < psi(base, rng.normal(0.4, 1, 5_000)) < 0.25
    assert psi(base, rng.normal(0, 3, 5_000)) > 0.25
    assert np.isnan(psi(base, np.array([np.nan])))
    drifts = feature_drift(("a", "b"), np.c_[base, base], np.c_[base[:5000], base[:5000] * 4])
    assert [(d.feature, d.level) for d in drifts] == [("b", "major"), ("a", "stable")]


def _write(project, days: int, wild_last_day: bool = False) -> None:
    for i, pair in enumerate(PAIRS):
        candles = walk(61 + i, 8)
        candles = candles[
            candles.index < pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=days)
        ].copy()
        if wild_last_day:
            last = candles.index >= candles.index[-1] - pd.Timedelta(hours=23, minutes=55)
            swing = np.exp(np.cumsum(np.random.default_rng(i).normal(0, 0.03, int(last.sum()))))
            for column in ("open", "high", "low", "close"):
                candles.loc[last, column] *= swing
        candles.to_csv(
            project / "data" / f"{pair.replace('/', '_')}-5m.csv", date_format="%Y-%m-%dT%H:%M:%SZ"
        )


@pytest.mark.slow
def test_retrain_promotes_by_margin_and_drift_raises_an_event(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    text = model_text(pairs=PAIRS) + "retrain:\n  promote: auto\n  margin: 0.9\n"
    (tmp_path / "models" / "m.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'e.db'}"
    common = ["--data", "data", "--url", url, "--models-dir", "files", "--workers", "1"]
    _write(tmp_path, 6)
    first = runner.invoke(app, ["ml", "retrain", "models/m.yaml", *common])
    assert first.exit_code == 0, first.output
    assert "promoted to production (no production model yet)" in first.output
    # A day later: the candidate is compared on the newest day, where the production model is out of sample.
    _write(tmp_path, 7)
    second = runner.invoke(app, ["ml", "retrain", "models/m.yaml", *common])
    assert second.exit_code == 0, second.output
    assert (
        "left as a candidate (candidate 0." in second.output
        and "margin 0.900: not better by the margin" in second.output
    )
    listed = runner.invoke(app, ["ml", "list", "--url", url]).output
    assert listed.count("production") == 1 and listed.count("candidate") == 1
    # Drift: the newest day is ten times as volatile as the production model's training rows.
    _write(tmp_path, 7, wild_last_day=True)
    drift = runner.invoke(app, ["ml", "drift", "models/m.yaml", "--data", "data", "--url", url])
    assert drift.exit_code == 0, drift.output
    assert "major feature drift" in drift.output and "change" in drift.output.split("major feature drift")[1]
    events = asyncio.run(run_with_session(lambda s: list_events(s), url))
    kinds = [e.kind for e in events]
    assert kinds.count("ml/retrain") == 2 and kinds.count("ml/drift") == 1
