"""The feature store: stored-and-extended matrices equal a from-scratch computation, a second run
computes only the new candles, and a changed expression, changed candles or a damaged file recompute."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.ml.feature_files import MAX_PARTS
from engine.ml.feature_store import FeatureStore, _lookback, agree
from engine.ml.features import feature_matrix
from engine.ml.pipeline import pair_data
from tests.engine.ml.conftest import model_text, walk

# Recursive (ema, Wilder's rsi/adx/atr), sliding-sum (mfi, sma) and higher-timeframe features.
FEATURES = {
    "ema20": "close / ema(close, 20)",
    "rsi14": "rsi(close, 14)",
    "adx14": "adx(14)",
    "mfi14": "mfi(14)",
    "atr14": "atr(14) / close",
    "sma_volume": "volume / sma(volume, 20)",
    "ema_1h": "close / ema(close, 20)@1h",
    "rsi_1h": "rsi(close, 14)@1h",
    "change": "close / close[1] - 1",
}
PAIR = "AAA/BTC"


def _assert_same(x: np.ndarray, expected: np.ndarray) -> None:
    """Equal NaNs; values within 1e-6 relative (16 float32 steps; see RTOL in feature_store.py for
    why not bit-equal: TA-Lib's sliding sums round differently from another start)."""
    assert x.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(x), np.isnan(expected))
    np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-9 * np.nanmax(np.abs(expected)))


@pytest.fixture
def loaded(write_model):
    return write_model(features=FEATURES)


def test_extended_matrix_equals_a_computation_from_scratch(loaded, tmp_path):
    candles = walk(5, 40)
    store = FeatureStore(tmp_path / "features")
    names = loaded.feature_names
    first = store.matrix(loaded.plan, names, candles.iloc[: 30 * 288], pair=PAIR)
    assert (first.action, first.computed) == ("computed", 30 * 288)
    for days in (31, 35, 40):
        part = candles.iloc[: days * 288]
        result = store.matrix(loaded.plan, names, part, pair=PAIR)
        assert result.action == "extended", result.reason
        _assert_same(result.x, feature_matrix(loaded.plan, names, part))
    # And read back as stored: the whole history, then a prefix of it (an earlier --end).
    again = store.matrix(loaded.plan, names, candles, pair=PAIR)
    assert (again.action, again.computed, again.reused) == ("read", 0, len(candles))
    _assert_same(again.x, feature_matrix(loaded.plan, names, candles))
    prefix = store.matrix(loaded.plan, names, candles.iloc[:1000], pair=PAIR)
    assert prefix.action == "read" and np.array_equal(prefix.x, again.x[:1000], equal_nan=True)


def test_a_second_run_computes_only_the_new_candles(loaded, tmp_path):
    candles = walk(6, 31)
    store = FeatureStore(tmp_path / "features")
    names = loaded.feature_names
    store.matrix(loaded.plan, names, candles.iloc[:-288], pair=PAIR)
    same = store.matrix(loaded.plan, names, candles.iloc[:-288], pair=PAIR)
    assert (same.action, same.computed, same.new) == ("read", 0, 0)
    one_day_more = store.matrix(loaded.plan, names, candles, pair=PAIR)
    assert one_day_more.action == "extended"
    assert one_day_more.new == 288 and one_day_more.reused == len(candles) - 288
    # The plan evaluated the new day plus its look-back only (4x the warm-up: the rsi@1h needs
    # 1,308 candles), not the 30 stored days.
    lookback, _ = _lookback(loaded.plan)
    assert one_day_more.computed == 288 + lookback < len(candles) - 288
    # Computed from scratch once (30 days), read once, extended once (1 day).
    assert f"3 matrices, 17,280 rows read, {8640 + 288:,} new rows" in store.summary()


def test_a_function_that_never_forgets_its_start_is_computed_from_the_start(write_model, tmp_path):
    loaded = write_model(features={"obv": "obv()", "rsi": "rsi(close, 14)"})
    candles = walk(7, 20)
    store = FeatureStore(tmp_path / "features")
    store.matrix(loaded.plan, loaded.feature_names, candles.iloc[:-288], pair=PAIR)
    result = store.matrix(loaded.plan, loaded.feature_names, candles, pair=PAIR)
    # OBV is a running total: from a later start it is off by a constant forever; the compared
    # look-back shows it, so nothing is appended from the look-back.
    assert result.action == "computed" and "look-back" in result.reason
    assert np.array_equal(
        result.x, feature_matrix(loaded.plan, loaded.feature_names, candles), equal_nan=True
    )


def test_a_changed_expression_is_another_key(write_model, tmp_path):
    candles = walk(8, 6)
    store = FeatureStore(tmp_path / "features")
    a = write_model(features={"r": "rsi(close, 14)"})
    b = write_model(features={"r": "rsi(close, 15)"})
    spaced = write_model(features={"r": "rsi( close,14 )"})
    assert store.matrix(a.plan, a.feature_names, candles, pair=PAIR).action == "computed"
    other = store.matrix(b.plan, b.feature_names, candles, pair=PAIR)
    assert other.action == "computed"
    np.testing.assert_array_equal(other.x, feature_matrix(b.plan, b.feature_names, candles))
    # The same expression written differently is the same key.
    assert store.matrix(spaced.plan, spaced.feature_names, candles, pair=PAIR).action == "read"
    assert len(list((tmp_path / "features").rglob("part-*.parquet"))) == 2


def test_a_corrected_candle_before_the_stored_end_recomputes(loaded, tmp_path):
    candles = walk(9, 10)
    store = FeatureStore(tmp_path / "features")
    names = loaded.feature_names
    store.matrix(loaded.plan, names, candles.iloc[:-288], pair=PAIR)
    fixed = candles.copy()
    fixed.iloc[500, fixed.columns.get_loc("close")] *= 1.01
    result = store.matrix(loaded.plan, names, fixed, pair=PAIR)
    assert result.action == "computed" and str(fixed.index[500]) in result.reason
    np.testing.assert_array_equal(result.x, feature_matrix(loaded.plan, names, fixed))
    # Candles starting elsewhere (more history fetched) are not the stored ones either.
    later = store.matrix(loaded.plan, names, fixed.iloc[288:], pair=PAIR)
    assert later.action == "computed" and "start" in later.reason


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_a_damaged_file_warns_and_recomputes(loaded, tmp_path, caplog, damage):
    candles = walk(10, 6)
    store = FeatureStore(tmp_path / "features")
    names = loaded.feature_names
    store.matrix(loaded.plan, names, candles, pair=PAIR)
    (path,) = (tmp_path / "features").rglob("part-*.parquet")
    body = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(body[: len(body) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a parquet file")
    else:  # one flipped bit inside the data pages: caught by the page checksums
        flipped = bytearray(body)
        flipped[len(body) // 3] ^= 0x10
        path.write_bytes(bytes(flipped))
    with caplog.at_level(logging.WARNING, logger="engine.ml.feature_store"):
        result = store.matrix(loaded.plan, names, candles, pair=PAIR)
    assert result.action == "computed"
    assert "computing the features again" in caplog.text and str(path) in caplog.text
    np.testing.assert_array_equal(result.x, feature_matrix(loaded.plan, names, candles))
    # The recomputed matrix replaced the damaged file.
    assert store.matrix(loaded.plan, names, candles, pair=PAIR).action == "read"


def test_agree_refuses_a_transient_and_accepts_rounding_noise():
    stored = np.array([[50.0, 0.0, np.nan], [40.0, 30.0, np.nan]], dtype=np.float32)

    def fresh(a: float, b: float, c: float) -> np.ndarray:
        return np.array([[a, b, c], [40.0, 30.0, np.nan]], dtype=np.float32)

    assert agree(fresh(50.0, 6.6e-14, np.nan), stored)  # MFI's sliding-sum noise
    assert agree(fresh(np.nextafter(np.float32(50), np.float32(99)), 0.0, np.nan), stored)  # 1 float32 step
    assert not agree(fresh(50.005, 0.0, np.nan), stored)  # an EMA 1e-4 off
    assert not agree(fresh(50.0, 0.0, 1.0), stored)  # a value where NaN was


def test_pair_data_through_the_store_matches_without(loaded, tmp_path):
    candles = walk(11, 8)
    store = FeatureStore(tmp_path / "features")
    plain = pair_data(loaded, PAIR, candles)
    stored = pair_data(loaded, PAIR, candles, store=store)
    again = pair_data(loaded, PAIR, candles, store=store)
    assert [r.action for _, r in store.done] == ["computed", "read"]
    for data in (stored, again):
        np.testing.assert_array_equal(data.x, plain.x)
        assert data.warmup == plain.warmup and np.array_equal(data.y, plain.y)


def test_cli_uses_the_store_by_default_and_not_with_no_feature_cache(tmp_path, monkeypatch):
    _register()
    runner = CliRunner()
    data = tmp_path / "data"
    data.mkdir()
    walk(31, 6).to_csv(data / "AAA_BTC-5m.csv", date_format="%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "m.yaml").write_text(model_text(pairs=(PAIR,)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    args = ["ml", "walkforward", "m.yaml", "--data", str(data), "--workers", "1"]
    off = runner.invoke(app, [*args, "--no-feature-cache"])
    assert off.exit_code == 0, off.output
    assert not (tmp_path / "home" / "features").exists() and "feature store" not in off.output
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and "0 rows read" in first.output
    assert len(list((tmp_path / "home" / "features").rglob("part-*.parquet"))) == 1
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and f"{6 * 288:,} rows read, 0 new rows" in second.output
    # Same metrics as without the store.
    lines = [line for line in second.output.splitlines() if not line.startswith("feature store")]
    assert lines == off.output.splitlines()


def test_new_candles_add_a_part_and_many_parts_are_merged(write_model, tmp_path, caplog):
    loaded = write_model(features={"r": "rsi(close, 14)", "e": "close / ema(close, 10)"})
    candles = walk(12, 32)
    store = FeatureStore(tmp_path / "features")
    names = loaded.feature_names

    def parts() -> list[Path]:
        return sorted((tmp_path / "features").rglob("part-*.parquet"))

    def run(days: int) -> str:
        return store.matrix(loaded.plan, names, candles.iloc[: days * 288], pair=PAIR).action

    run(10)
    for day in range(11, 11 + MAX_PARTS - 1):
        assert run(day) == "extended"
    # One part per run: the new day's rows only were written.
    assert [p.name for p in parts()[:2]] == ["part-000000000000.parquet", f"part-{10 * 288:012d}.parquet"]
    assert len(parts()) == MAX_PARTS
    assert run(30) == "extended" and len(parts()) == 1
    _assert_same(store.done[-1][1].x, feature_matrix(loaded.plan, names, candles.iloc[: 30 * 288]))
    # A part gone missing from the middle: the others are not used.
    assert (run(31), run(32), len(parts())) == ("extended", "extended", 3)
    parts()[1].unlink()
    with caplog.at_level(logging.WARNING, logger="engine.ml.feature_store"):
        assert run(32) == "computed"
    assert "a part is missing" in caplog.text
    np.testing.assert_array_equal(store.done[-1][1].x, feature_matrix(loaded.plan, names, candles))


def test_the_key_changes_with_a_called_functions_source(write_model, monkeypatch):
    import engine.ml.feature_store as feature_store

    loaded = write_model(features={"r": "rsi(close, 14)", "s": "close / sma(close, 20)"})
    key = feature_store.feature_key(loaded.plan, loaded.feature_names, PAIR, "5m", "src")
    assert key == feature_store.feature_key(loaded.plan, loaded.feature_names, PAIR, "5m", "src")
    assert key != feature_store.feature_key(loaded.plan, loaded.feature_names, PAIR, "5m", "other")
    real = feature_store.inspect.getsource

    def edited(obj):  # the rsi implementation as if a plugin author had changed it
        text = real(obj)
        return text + "# edited" if obj is loaded.plan.registry.functions["rsi"].impl else text

    monkeypatch.setattr(feature_store.inspect, "getsource", edited)
    assert key != feature_store.feature_key(loaded.plan, loaded.feature_names, PAIR, "5m", "src")
