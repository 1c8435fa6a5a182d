"""Model inputs: declared like a strategy's, searched by `engine ml tune` beside the learner, each
value's features a key of its own in the feature store; bad declarations are errors at their place."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dsl import DiagnosticError
from engine.cli import _register, app
from engine.config import load_model
from engine.config._model_load import model_variant
from engine.ml.feature_store import FeatureStore
from engine.ml.identity import spec_hash
from engine.ml.pipeline import pair_data
from engine.ml.tune import input_space, tune
from tests.engine.ml.conftest import walk

MODEL = """\
model: m
timeframe: 5m
pairs: [AAA/BTC]
inputs:
  window:
    default: 10
    range: [5, 20]
    step: 5
  mult: {default: 1.0, range: [0.5, 1.5], step: 0.5}
  fixed: {default: 3}
features:
  rsi_w: rsi(close, window)
  ema_w: close / ema(close, window * 2)
  roc: roc(close, fixed)
  band: close / (sma(close, 20) * mult)
label: {type: direction, horizon: 6}
learner: {type: logistic}
windows: {train: 3d, step: 1d, min_train_rows: 100}
seed: 7
"""


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(MODEL)
    return path


def test_inputs_compile_into_the_features_and_a_variant_is_another_spec(model_file):
    loaded = load_model(model_file)
    assert "rsi(source=%0, length=10)" in loaded.plan.describe()
    variant = model_variant(loaded, {"window": 15})
    assert "rsi(source=%0, length=15)" in variant.plan.describe()
    assert "ema(source=%0, length=30)" in variant.plan.describe()
    assert variant.model.inputs["window"].default == 15 and loaded.model.inputs["window"].default == 10
    assert spec_hash(variant) != spec_hash(loaded)
    with pytest.raises(DiagnosticError, match="model 'm' has no input 'windw'"):
        model_variant(loaded, {"windw": 3})


def test_the_search_space_is_the_ranged_and_true_false_inputs(model_file):
    space = {p.name: p for p in input_space(load_model(model_file))}
    assert set(space) == {"inputs.window", "inputs.mult"}  # `fixed` has no range
    window, mult = space["inputs.window"], space["inputs.mult"]
    assert (window.kind, window.low, window.high, window.step) == ("int", 5.0, 20.0, 5.0)
    assert (mult.kind, mult.low, mult.high, mult.step) == ("float", 0.5, 1.5, 0.5)


def test_tune_explores_windows_and_stores_each_variant_under_its_own_key(model_file, tmp_path):
    loaded = load_model(model_file)
    store = FeatureStore(tmp_path / "features")
    pairs = [pair_data(loaded, "AAA/BTC", walk(71, 5), store=store, source="test")]
    study = tune(loaded, pairs, 8, workers=1, store=store, source="test")
    finished = [t for t in study.trials if t.value is not None]
    assert len(finished) == 8
    windows = {t.params["inputs.window"] for t in finished}
    assert len(windows) >= 2 and windows <= {5, 10, 15, 20}
    assert {t.params["inputs.mult"] for t in finished} <= {0.5, 1.0, 1.5}
    assert all("c" in t.params for t in finished)  # the learner is searched together with them
    # One stored matrix per distinct (window, mult) variant, plus the defaults loaded first;
    # a variant met again is read, not computed.
    variants = {(t.params["inputs.window"], t.params["inputs.mult"]) for t in finished}
    folders = {p.parent for p in (tmp_path / "features").rglob("part-*.parquet")}
    assert len(folders) == len(variants | {(10, 1.0)})
    actions = [r.action for _, r in store.done]
    assert actions.count("computed") == len(folders) and actions.count("read") == 9 - len(folders)


def test_cli_prints_the_best_inputs_and_learner(model_file, tmp_path, monkeypatch):
    _register()
    data = tmp_path / "data"
    data.mkdir()
    walk(71, 5).to_csv(data / "AAA_BTC-5m.csv", date_format="%Y-%m-%dT%H:%M:%SZ")
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(
        app, ["ml", "tune", str(model_file), "--trials", "3", "--data", str(data), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "trial 0: balanced accuracy" in result.output and "window=" in result.output
    best = result.output.split("inputs (defaults):\n")[1]
    assert (
        best.startswith("  window: ") and "  mult: " in best and "learner:\n  type: logistic\n  c: " in best
    )


BAD = """\
model: m
timeframe: 5m
pairs: [AAA/BTC]
inputs:
  window: {default: 40, range: [5, 30]}
  close: {default: 3}
  low_high: {default: 3, range: [9, 2]}
  rsi_w: {default: 1}
  wide: {default: 3, range: [1, 4], step: 5}
  odd: {default: 1, type: strange}
features:
  rsi_w: rsi(close, window)
  other: rsi(close, windw)
label: {type: direction, horizon: 6}
windows: {train: 3d, step: 1d}
"""


def test_bad_input_declarations_are_errors_at_their_place(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(DiagnosticError) as caught:
        load_model(path, relative_to=tmp_path)
    found = {(d.code, d.span.line, d.span.col, d.message) for d in caught.value.diagnostics}
    assert found == {
        ("CFG008", 5, 21, "inputs.window.default: 40 is outside its range [5, 30]"),
        ("CFG002", 6, 3, "input name 'close' is a candle series; choose another name"),
        ("CFG002", 7, 33, "inputs.low_high.range: the low end must be below the high end, got [9, 2]"),
        ("CFG002", 9, 43, "inputs.wide.step: 5 is wider than the range [1, 4]"),
        ("CFG002", 10, 8, "inputs.odd: an input's type must be 'int', 'float' or 'bool'"),
        ("CFG002", 12, 3, "feature name 'rsi_w' is already an input's name"),
        ("DSL003", 13, 21, "unknown name 'windw' (did you mean 'window'?)"),
    }
