"""Live features one candle at a time equal the batch path's rows, on real candles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.config import load_model
from engine.data import DataDirectory
from engine.ml.features import feature_matrix
from engine.ml.incremental import streamer
from engine.ml.live_rows import LiveRows

CANDLE = ("open", "high", "low", "close", "volume")

# The benchmark's FreqAI-like features, and chains of them (an indicator of an indicator, shifts).
FEATURES = """\
  rsi10: rsi(close, 10)
  rsi20: rsi(close, 20)
  mfi10: mfi(10)
  mfi20: mfi(20)
  adx10: adx(10)
  adx20: adx(20)
  close_sma10: close / sma(close, 10)
  close_ema20: close / ema(close, 20)
  roc10: roc(close, 10)
  pct_change: close / close[1] - 1
  volume20: volume / sma(volume, 20)
  hour: hour()
  ema_of_rsi: ema(rsi(close, 14), 9) - 50
  range: -(high - low) * 2 + close[3]
  natr14: atr(14) / close
  tr: atr(1)
"""


def _model(tmp_path: Path, features: str, name: str = "inc") -> object:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"model: {name}\ntimeframe: 5m\npairs: [ETH/BTC]\nfeatures:\n{features}"
        "label:\n  type: direction\n  horizon: 12\nlearner:\n  type: lightgbm\n"
        "windows:\n  train: 5d\n  step: 1d\n"
    )
    return load_model(path)


def _columns(candles) -> dict[str, np.ndarray]:
    return {c: candles[c].to_numpy(dtype=np.float64) for c in CANDLE}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(((a == b) | (np.isnan(a) & np.isnan(b))).all())


@pytest.mark.parametrize("pair", ["ETH/BTC", "ADA/BTC", "DASH/BTC"])
def test_streamed_rows_equal_batch_rows_on_real_candles(tmp_path: Path, shared_data: Path, pair: str) -> None:
    loaded = _model(tmp_path, FEATURES)
    candles = DataDirectory(shared_data).load(pair, "5m").iloc[:3000]
    batch = feature_matrix(loaded.plan, loaded.feature_names, candles)
    stream = streamer(loaded.plan, loaded.feature_names)
    assert stream is not None
    times = candles.index.as_unit("ns").asi8
    head = stream.feed({k: v[:2000] for k, v in _columns(candles).items()}, times[:2000])
    assert head is not None and _same(head, batch[:2000])
    # Then one candle at a time, as live closes arrive: every value equal, bit for bit (float32).
    columns = _columns(candles)
    for i in range(2000, len(candles)):
        row = stream.step({c: float(columns[c][i]) for c in CANDLE}, int(times[i]))
        assert row is not None
        assert _same(row, batch[i]), (
            i,
            dict(zip(loaded.feature_names, zip(row, batch[i], strict=True), strict=True)),
        )
    assert np.isfinite(batch[-1]).all()  # the comparison covered defined values, not only NaN


def test_plans_without_a_step_for_every_node_are_not_streamed(tmp_path: Path) -> None:
    for i, features in enumerate(
        ["  trend: ema(close, 10)@1h\n", "  m: macd(close).hist\n", "  w: close / wma(close, 10)\n"]
    ):
        loaded = _model(tmp_path, features, name=f"nostream{i}")
        assert streamer(loaded.plan, loaded.feature_names) is None


def test_a_missing_value_mid_stream_ends_the_stream(tmp_path: Path) -> None:
    loaded = _model(tmp_path, "  r: rsi(close, 5)\n")
    stream = streamer(loaded.plan, loaded.feature_names)
    assert stream is not None
    for i in range(10):
        assert stream.step(dict.fromkeys(CANDLE, 1.0 + i), i) is not None
    assert stream.step({**dict.fromkeys(CANDLE, 1.0), "close": float("nan")}, 10) is None
    assert stream.broken  # the caller falls back to the batch path over its window


class _Echo:
    """A fitted model whose 'probabilities' are the first three features, to see what it was given."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.calls.append(len(x))
        return x[:, :3].astype(np.float32)


def test_live_rows_predict_each_new_candle_once_from_streamed_features(
    tmp_path: Path, shared_data: Path
) -> None:
    loaded = _model(tmp_path, FEATURES)
    candles = DataDirectory(shared_data).load("ETH/BTC", "5m").iloc[:1200]
    full = feature_matrix(loaded.plan, loaded.feature_names, candles)
    window, fitted, live = 400, _Echo(), LiveRows("v1")
    for end in range(window, len(candles) + 1):
        frame = candles.iloc[end - window : end]
        opens = frame.index.as_unit("ns").asi8
        rows = np.arange(window - 50, window)  # the rows after the production model's data
        got = live.predict(loaded, fitted, frame, opens, rows, None)
        if end == window:  # first call: the window's features by the batch path
            assert _same(got, feature_matrix(loaded.plan, loaded.feature_names, frame)[rows, :3])
        else:  # later: cached rows, and the new candle streamed on from where the window started
            assert _same(got[-1], full[end - 1, :3])
    assert fitted.calls == [50] + [1] * (len(candles) - window)
    assert live.batch_rows == 50 and live.streamed_rows == len(candles) - window


def test_live_rows_step_over_unasked_closes_and_restart_after_a_gap(
    tmp_path: Path, shared_data: Path
) -> None:
    loaded = _model(tmp_path, FEATURES)
    candles = DataDirectory(shared_data).load("ETH/BTC", "5m").iloc[:1000]
    live, fitted = LiveRows("v1"), _Echo()

    def batch(start: int, end: int) -> np.ndarray:
        return feature_matrix(loaded.plan, loaded.feature_names, candles.iloc[start:end])[-1, :3]

    # 401: the next candle. 450: 48 closes nobody asked about, still in the window: stepped through.
    # 900: the stream's last candle left the window (a gap): the window's batch row, and a new stream.
    for end, expected_from in ((400, 0), (401, 0), (450, 0), (900, 500), (901, 500)):
        frame = candles.iloc[end - 400 : end]
        opens = frame.index.as_unit("ns").asi8
        got = live.predict(loaded, fitted, frame, opens, np.array([399]), None)
        assert _same(got[0], batch(expected_from, end)), end
    assert live.batch_rows == 2 and live.streamed_rows == 3


def test_bots_with_different_windows_share_the_rows_and_the_stream(tmp_path: Path, shared_data: Path) -> None:
    loaded = _model(tmp_path, FEATURES)
    candles = DataDirectory(shared_data).load("ETH/BTC", "5m").iloc[:1300]
    # The stream starts from the first window asked about (the short one, from candle 650).
    full = feature_matrix(loaded.plan, loaded.feature_names, candles.iloc[650:])
    live, fitted = LiveRows("v1"), _Echo()
    for end in range(1000, 1100):
        for window in (350, 600):  # two strategies' windows over the same pair and model
            frame = candles.iloc[end - window : end]
            opens = frame.index.as_unit("ns").asi8
            # The rows after the model's data: 300 in the short window, 550 (250 older) in the long one.
            rows = np.arange(window - (300 if window == 350 else 550), window)
            got = live.predict(loaded, fitted, frame, opens, rows, None)
            if end > 1000:
                assert _same(got[-1], full[end - 651, :3])
    # Only the first close computes windows (the short one, then the long one's 250 older rows);
    # afterwards one new row a close, streamed, whichever window asks first.
    assert live.batch_rows == 300 + 250 and live.streamed_rows == 99
    assert fitted.calls[:2] == [300, 250] and fitted.calls[2:] == [1] * 99
