"""Curated indicators equal TA-Lib on real candles (after warm-up), and a few equal textbook formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from tests.engine.indicators.helpers import constants, default_kwargs


def _call(registry, name, candles, **overrides):
    spec = registry.lookup(name)
    kwargs = default_kwargs(spec, candles, **overrides)
    return spec.impl(**kwargs), spec.warmup(constants(kwargs))


def _same(ours: pd.Series, reference: np.ndarray, warmup: int) -> None:
    ours = ours.to_numpy()[warmup:]
    reference = np.asarray(reference, dtype=np.float64)[warmup:]
    assert not np.isnan(ours).any(), "NaN after the warm-up"
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12 * np.nanmax(np.abs(reference)))


def _ohlcv(candles):
    return [candles[c].to_numpy() for c in ("open", "high", "low", "close", "volume")]


@pytest.mark.parametrize(
    ("name", "overrides", "reference"),
    [
        ("sma", {"length": 30}, lambda o, h, lo, c, v: talib.SMA(c, 30)),
        ("ema", {"length": 12}, lambda o, h, lo, c, v: talib.EMA(c, 12)),
        ("wma", {"length": 20}, lambda o, h, lo, c, v: talib.WMA(c, 20)),
        ("rsi", {}, lambda o, h, lo, c, v: talib.RSI(c, 14)),
        ("atr", {}, lambda o, h, lo, c, v: talib.ATR(h, lo, c, 14)),
        ("cci", {}, lambda o, h, lo, c, v: talib.CCI(h, lo, c, 20)),
        ("willr", {}, lambda o, h, lo, c, v: talib.WILLR(h, lo, c, 14)),
        ("mfi", {}, lambda o, h, lo, c, v: talib.MFI(h, lo, c, v, 14)),
        ("obv", {}, lambda o, h, lo, c, v: talib.OBV(c, v)),
    ],
)
def test_single_output_matches_talib(registry, eth, name, overrides, reference):
    ours, warmup = _call(registry, name, eth, **overrides)
    _same(ours, reference(*_ohlcv(eth)), warmup)


def test_macd_matches_talib(registry, eth):
    ours, warmup = _call(registry, "macd", eth)
    macd, signal, hist = talib.MACD(eth["close"].to_numpy(), 12, 26, 9)
    assert list(ours.columns) == ["macd", "signal", "hist"]
    for column, reference in zip(ours.columns, (macd, signal, hist), strict=True):
        _same(ours[column], reference, warmup)


def test_bbands_matches_talib(registry, eth):
    ours, warmup = _call(registry, "bbands", eth, length=20, std=2.5)
    close = eth["close"].to_numpy()
    upper, middle, lower = talib.BBANDS(close, 20, 2.5, 2.5, 0)
    _same(ours["upper"], upper, warmup)
    _same(ours["middle"], middle, warmup)
    _same(ours["lower"], lower, warmup)
    _same(ours["bandwidth"], (upper - lower) / middle, warmup)
    _same(ours["percent"], (close - lower) / (upper - lower), warmup)


def test_adx_matches_talib(registry, eth):
    ours, warmup = _call(registry, "adx", eth)
    _, h, lo, c, _ = _ohlcv(eth)
    _same(ours["adx"], talib.ADX(h, lo, c, 14), warmup)
    _same(ours["plus_di"], talib.PLUS_DI(h, lo, c, 14), warmup)
    _same(ours["minus_di"], talib.MINUS_DI(h, lo, c, 14), warmup)


def test_stoch_matches_talib(registry, eth):
    ours, warmup = _call(registry, "stoch", eth, k=21, d=4, smooth_k=5)
    _, h, lo, c, _ = _ohlcv(eth)
    k, d = talib.STOCH(h, lo, c, 21, 5, 0, 4, 0)
    _same(ours["k"], k, warmup)
    _same(ours["d"], d, warmup)


# ----- independent formulas (not TA-Lib again) ------------------------------------------------------


def test_ema_is_the_textbook_recursion_seeded_with_an_sma(registry, eth):
    close = eth["close"].to_numpy()
    n = 10
    expected = np.full(len(close), np.nan)
    expected[n - 1] = close[:n].mean()
    alpha = 2 / (n + 1)
    for i in range(n, len(close)):
        expected[i] = alpha * close[i] + (1 - alpha) * expected[i - 1]
    ours, _ = _call(registry, "ema", eth, length=n)
    np.testing.assert_allclose(ours.to_numpy()[n - 1 :], expected[n - 1 :], rtol=1e-9)
    assert ours.iloc[: n - 1].isna().all()


def test_rsi_after_warmup_equals_a_long_history_wilder_rsi(registry, eth):
    """After the warm-up, RSI no longer depends on where its history starts (the point of the figure)."""
    ours, warmup = _call(registry, "rsi", eth)
    late = registry.lookup("rsi").impl(source=eth["close"].iloc[1000:], length=14)
    np.testing.assert_allclose(late.to_numpy()[warmup:], ours.to_numpy()[1000 + warmup :], rtol=2e-3)


def test_donchian_and_keltner_by_formula(registry, eth):
    donchian, _ = _call(registry, "donchian", eth, length=10)
    np.testing.assert_allclose(donchian["upper"].iloc[9:], eth["high"].rolling(10).max().iloc[9:])
    np.testing.assert_allclose(donchian["lower"].iloc[9:], eth["low"].rolling(10).min().iloc[9:])
    keltner, warmup = _call(registry, "keltner", eth)
    _, h, lo, c, _ = _ohlcv(eth)
    middle = talib.EMA(c, 20)
    _same(keltner["middle"], middle, warmup)
    _same(keltner["upper"], middle + 2 * talib.ATR(h, lo, c, 10), warmup)


def test_nan_inside_an_input_restarts_the_indicator_instead_of_poisoning_it(registry, eth):
    close = eth["close"].copy()
    close.iloc[3000] = np.nan
    ours = registry.lookup("ema").impl(source=close, length=10)
    assert ours.iloc[3000:3009].isna().all()
    restarted = talib.EMA(close.to_numpy()[3001:], 10)
    np.testing.assert_allclose(ours.to_numpy()[3010:], restarted[9:], rtol=1e-12)
    before = talib.EMA(close.to_numpy()[:3000], 10)
    np.testing.assert_allclose(ours.to_numpy()[9:3000], before[9:], rtol=1e-12)
