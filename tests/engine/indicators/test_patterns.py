"""pattern(name, direction): hand-built candles for a few well-known patterns, and the choices list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib


def candles(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(rows), freq="1h", tz="UTC", name="date")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=index, dtype=np.float64)
    frame["volume"] = 1.0
    return frame


def downtrend(n: int = 12, start: float = 100.0) -> list[tuple[float, float, float, float]]:
    """Red candles with 2-point bodies and small shadows, each opening where the last closed."""
    rows, price = [], start
    for _ in range(n):
        rows.append((price, price + 0.3, price - 2.3, price - 2.0))
        price -= 2.0
    return rows


def detect(registry, frame, name, direction="any"):
    pattern = registry.lookup("pattern").impl
    cols = {c: frame[c] for c in ("open", "high", "low", "close")}
    return pattern(name=name, direction=direction, **cols)


def test_hammer_after_a_downtrend(registry):
    rows = downtrend()
    last = rows[-1][3]
    # small body at the top, lower shadow four times the body, no upper shadow
    rows.append((last - 1.0, last - 0.5, last - 4.0, last - 0.5))
    frame = candles(rows)
    hits = detect(registry, frame, "hammer")
    assert hits.iloc[-1] and not hits.iloc[:-1].any()
    assert detect(registry, frame, "hammer", "bullish").iloc[-1]
    assert not detect(registry, frame, "hammer", "bearish").any()


def test_bullish_engulfing(registry):
    rows = downtrend()
    last = rows[-1][3]
    rows.append((last - 0.5, last + 4.5, last - 1.0, last + 4.0))  # green body covering the red one
    frame = candles(rows)
    assert detect(registry, frame, "engulfing", "bullish").iloc[-1]
    assert not detect(registry, frame, "engulfing", "bearish").iloc[-1]


def test_doji_matches_talib_and_has_no_bearish_side(registry):
    rows = downtrend()
    last = rows[-1][3]
    rows.append((last, last + 1.5, last - 1.5, last + 0.01))
    frame = candles(rows)
    ours = detect(registry, frame, "doji")
    reference = talib.CDLDOJI(*(frame[c].to_numpy() for c in ("open", "high", "low", "close")))
    assert ours.iloc[-1]
    np.testing.assert_array_equal(ours.to_numpy(), reference != 0)
    assert not detect(registry, frame, "doji", "bearish").any()


def test_every_talib_recogniser_is_a_choice(registry):
    spec = registry.lookup("pattern")
    choices = spec.param("name").choices
    assert len(choices) == len(talib.get_function_groups()["Pattern Recognition"]) == 61
    assert {"hammer", "doji", "engulfing", "morningstar", "3blackcrows", "shootingstar"} <= set(choices)
    assert spec.param("direction").choices == ("any", "bullish", "bearish")


def test_matches_talib_signs_on_real_candles(registry, eth):
    ohlc = [eth[c].to_numpy() for c in ("open", "high", "low", "close")]
    for name in ("engulfing", "hikkake", "morningstar", "spinningtop"):
        score = getattr(talib, f"CDL{name.upper()}")(*ohlc)
        np.testing.assert_array_equal(detect(registry, eth, name, "bullish").to_numpy(), score > 0)
        np.testing.assert_array_equal(detect(registry, eth, name, "bearish").to_numpy(), score < 0)
        np.testing.assert_array_equal(detect(registry, eth, name).to_numpy(), score != 0)
