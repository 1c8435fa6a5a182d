"""`ml.<model>.<member>` in rules: stored out-of-sample predictions where they exist, the production
model after its training data, NaN elsewhere; unknown names are compile errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsl import DiagnosticError, compile_expression
from engine.config._project import project_registry
from engine.feeds.context import EvalContext
from engine.feeds.store import store_reader, write_observations
from engine.ml.pipeline import pair_data
from engine.ml.pit import prediction_observations
from engine.ml.registry import promote, register_version
from engine.ml.train import train_and_save
from engine.store import run_with_session
from tests.engine.ml.conftest import model_text, walk

PAIR = "AAA/BTC"


@pytest.mark.slow
async def test_rules_read_stored_predictions_then_the_production_model(tmp_path, monkeypatch, write_model):
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    monkeypatch.setenv("ENGINE_DATABASE_URL", url)
    loaded = write_model(pairs=(PAIR,))
    candles = walk(41, 8)
    trained_until = pd.Timestamp("2024-01-07", tz="UTC")
    seen = candles[candles.index < trained_until]
    outcome = train_and_save(loaded, [pair_data(loaded, PAIR, seen)], tmp_path / "files", workers=1)

    async def store(session):
        await register_version(session, **outcome.registry_fields())
        await write_observations(
            session,
            prediction_observations(outcome.predictions, "m", outcome.spec_hash, "binance", outcome.version),
        )
        await promote(session, "m", outcome.version, "test")

    await run_with_session(store, url)
    registry = project_registry(tmp_path)
    plan = compile_expression("ml.m.p_buy", registry, "5m")
    assert plan.warmup >= loaded.plan.warmup  # the strategy loads enough candles for the model's features
    context = EvalContext(PAIR, "binance", store_reader(url))
    p_buy = plan.evaluate(candles, context)["value"]
    predicted = outcome.predictions.set_index("time")["p_buy"]
    # Inside the walk-forward range: exactly the stored out-of-sample predictions.
    np.testing.assert_allclose(p_buy.loc[predicted.index].to_numpy(), predicted.to_numpy(), atol=1e-6)
    # Before the first window: nothing was known.
    assert p_buy[p_buy.index < predicted.index[0]].isna().all()
    # After the training data: the production model, from the candles themselves.
    after = p_buy[p_buy.index >= trained_until]
    assert len(after) == 2 * 288 and after.notna().all()
    x = pair_data(loaded, PAIR, candles).x[candles.index >= trained_until]
    np.testing.assert_allclose(after.to_numpy(), outcome.models["all"].predict_proba(x)[:, 2], atol=1e-6)
    signal = compile_expression("ml.m.signal", registry, "5m").evaluate(candles, context)["value"]
    confidence = compile_expression("ml.m.confidence", registry, "5m").evaluate(candles, context)["value"]
    known = signal.notna()
    assert set(signal[known].unique()) <= {-1.0, 1.0}  # two classes: no HOLD
    assert (confidence[known] >= 0.5).all()
    # Without a run's data (engine eval): NaN, never an error.
    assert plan.evaluate(candles)["value"].isna().all()


def test_unknown_models_and_members_are_compile_errors(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "btc_dir.yaml").write_text(model_text(name="btc_dir"))
    registry = project_registry(tmp_path)
    with pytest.raises(DiagnosticError, match=r"unknown model 'btc_dr' \(did you mean 'btc_dir'\?\)"):
        compile_expression("ml.btc_dr.p_buy", registry, "5m")
    with pytest.raises(DiagnosticError, match=r"members: p_buy, p_sell, p_hold, signal, confidence"):
        compile_expression("ml.btc_dir.p_bye > 0.5", registry, "5m")
