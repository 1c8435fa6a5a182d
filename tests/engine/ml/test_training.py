"""Reproducibility, model identity, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from engine.ml.errors import MLError
from engine.ml.identity import model_version, spec_hash
from engine.ml.pipeline import evaluate, pair_data, predictions_frame, walkforward
from engine.ml.walkforward import fit_latest
from tests.engine.ml.conftest import RANDOM_FEATURES, walk

PAIRS = ("AAA/BTC", "BBB/BTC")


def _run(loaded, days=6, workers=1):
    pairs = [pair_data(loaded, p, walk(11 + i, days)) for i, p in enumerate(PAIRS)]
    return pairs, walkforward(loaded, pairs, workers=workers)


@pytest.mark.slow
def test_same_spec_and_data_give_the_same_models_and_predictions(write_model):
    loaded = write_model(
        pairs=PAIRS, learner="  type: lightgbm\n  trees: 30\n  bagging_fraction: 0.7\n  feature_fraction: 0.8"
    )
    pairs, first = _run(loaded, workers=1)
    _, second = _run(loaded, workers=2)
    a, b = predictions_frame(first, "v"), predictions_frame(second, "v")
    assert len(a) > 500
    assert a.equals(b)
    assert fit_latest(loaded.model, pairs)["all"].body == fit_latest(loaded.model, pairs)["all"].body


@pytest.mark.slow
def test_the_logistic_baseline_learner_trains_and_predicts(write_model):
    loaded = write_model(pairs=PAIRS, learner="  type: logistic\n  c: 0.5")
    _, wf = _run(loaded)
    proba = np.concatenate([r.proba for r in wf.results])
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert abs(evaluate(wf).model.balanced_accuracy - 0.5) < 0.05


def test_the_version_changes_with_any_parameter_and_with_the_data(write_model):
    base = write_model(pairs=PAIRS)
    other = write_model(pairs=PAIRS, features={**RANDOM_FEATURES, "rsi14": "rsi(close, 15)"})
    spaced = write_model(pairs=PAIRS, features={**RANDOM_FEATURES, "rsi14": "rsi( close,14 )"})
    learner = write_model(pairs=PAIRS, learner="  type: lightgbm\n  trees: 41\n  leaves: 15")
    assert spec_hash(base) == spec_hash(spaced)  # the same compiled features
    assert len({spec_hash(base), spec_hash(other), spec_hash(learner)}) == 3
    ranges = [("AAA/BTC", 0, 100)]
    assert model_version(spec_hash(base), ranges) != model_version(spec_hash(base), [("AAA/BTC", 0, 200)])


def test_triple_barrier_labels_train_three_classes(write_model):
    label = "  type: triple_barrier\n  horizon: 12\n  profit: 1.5\n  stop: 1.5\n  volatility: 30"
    loaded = write_model(pairs=PAIRS, label=label)
    pairs, wf = _run(loaded)
    assert set(np.unique(pairs[0].y)) == {-1, 0, 1, 2}
    metrics = evaluate(wf).model
    assert set(metrics.per_class) == {"sell", "hold", "buy"}
    assert abs(metrics.balanced_accuracy - 1 / 3) < 0.05


def test_a_label_horizon_longer_than_the_data_is_a_clear_error(write_model):
    loaded = write_model(pairs=PAIRS[:1])
    data = pair_data(loaded, PAIRS[0], walk(1, 1).iloc[:5])
    with pytest.raises(MLError, match=r"ML002.*horizon \(6 candles\) is longer than the data \(5 candles\)"):
        walkforward(loaded, [data], workers=1)


def test_a_window_with_one_class_only_is_a_clear_error(write_model):
    loaded = write_model(pairs=PAIRS[:1])
    candles = walk(1, 6)
    candles["close"] = np.linspace(100, 200, len(candles))  # always up: every label is BUY
    with pytest.raises(MLError, match=r"ML004.*window 1 .* are all BUY"):
        walkforward(loaded, [pair_data(loaded, PAIRS[0], candles)], workers=1)


def test_constant_and_missing_features_are_dropped_with_a_warning(write_model):
    features = {"flat": "close * 0 + 1", "never": "close / 0 * 0", "rsi14": "rsi(close, 14)"}
    loaded = write_model(pairs=PAIRS[:1], features=features)
    data = pair_data(loaded, PAIRS[0], walk(1, 6))
    data.x[100:110, 2] = np.inf  # infinities are missing values, never a crash
    data.x[:, 1] = np.nan
    data.warmup = 20
    wf = walkforward(loaded, [data], workers=1)
    assert wf.results[0].dropped == [0, 1]
    assert wf.warnings and "[0, 1]" in wf.warnings[0]
    data.x[:, 2] = 5.0
    with pytest.raises(MLError, match=r"ML005.*every feature is constant or missing"):
        walkforward(loaded, [data], workers=1)


def test_too_little_data_for_the_windows_is_a_clear_error(write_model):
    loaded = write_model(pairs=PAIRS[:1])
    with pytest.raises(MLError, match=r"ML003.*too little data for the windows"):
        walkforward(loaded, [pair_data(loaded, PAIRS[0], walk(1, 2))], workers=1)
