"""pump_score / dump_risk: hand-computed z-scores on real candles, generated episodes with known starts."""

from __future__ import annotations

import numpy as np
import pytest

from dsl import compile_expression
from engine.indicators._anomaly import dump_risk, pump_score
from engine.indicators.synthetic import pump_and_dump, random_walk


def _spread(values: np.ndarray) -> float:
    """Interquartile range / 1.349 (numpy's linear interpolation, as pandas' rolling quantile)."""
    q25, q75 = np.percentile(values, [25, 75])
    return float((q75 - q25) / 1.349)


@pytest.mark.parametrize("t", [700, 2500, 5000])
def test_components_are_the_robust_z_scores_computed_by_hand(eth, t):
    close, volume = eth.close.to_numpy(), eth.volume.to_numpy()
    out = pump_score(288, 3, close, volume)
    # Baseline: the 288 candles before the last 3 (t-290 .. t-3).
    steps = np.diff(np.log(close))[t - 3 - 288 : t - 3]  # step[i] = log c[i] - log c[i-1], i = t-290..t-3
    velocity = np.log(close[t] / close[t - 3]) / (_spread(steps) * np.sqrt(3))
    logv = np.log(volume[t - 3 - 287 : t - 2] + 1e-12)
    swell = (np.log(volume[t - 2 : t + 1].mean() + 1e-12) - np.median(logv)) / _spread(logv)
    assert out["velocity"][t] == pytest.approx(velocity, rel=1e-9)
    assert out["volume"][t] == pytest.approx(swell, rel=1e-9)
    assert out["score"][t] == pytest.approx(np.sqrt(max(velocity, 0) * max(swell, 0)), abs=1e-12)


def test_a_generated_pump_is_scored_from_its_first_candle_and_its_dump_right_after():
    episode = pump_and_dump(1500, 1000, np.random.default_rng(4), rise=0.08, rise_candles=4, burst=6.0)
    c = episode.candles
    pump = pump_score(288, 3, c.close.to_numpy(), c.volume.to_numpy())["score"]
    risk = dump_risk(288, 3, 36, c.close.to_numpy(), c.volume.to_numpy())["score"]
    assert np.nanmax(pump[: episode.pump_start]) < 4  # calm before
    assert (pump[episode.pump_start : episode.pump_start + 2] >= 4).any()
    assert np.nanmax(risk[: episode.pump_start]) < 4
    assert (risk[episode.dump_start : episode.dump_start + 2] >= 4).any()
    assert np.nanmax(risk[episode.pump_start : episode.dump_start]) < 4  # not while it still rises


def test_a_calm_month_raises_almost_no_alarm():
    walk = random_walk(288 * 30, np.random.default_rng(1))
    pump = pump_score(288, 3, walk.close.to_numpy(), walk.volume.to_numpy())["score"]
    risk = dump_risk(288, 3, 36, walk.close.to_numpy(), walk.volume.to_numpy())["score"]
    assert np.nansum(pump >= 4) == 0
    assert np.nansum(risk >= 4) <= 5  # bench/pump.py prints the rate per day


def test_fade_needs_a_pump_before_the_slide():
    walk = random_walk(1500, np.random.default_rng(2))
    out = dump_risk(288, 3, 36, walk.close.to_numpy(), walk.volume.to_numpy())
    # Without a pump the fade stays small whatever the random walk does.
    assert np.nanmax(out["fade"]) < 3


def test_rules_read_the_members(registry, eth):
    plan = compile_expression("pump_score().score > 4 or dump_risk(fast=2).crash > 4", registry, "5m")
    assert plan.evaluate(eth).iloc[:, 0].to_numpy().any()
