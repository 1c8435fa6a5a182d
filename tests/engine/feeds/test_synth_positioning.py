"""Generated futures positioning and funding (the demo's history for the example feeds.yaml): Binance's
timing, marked generated, deterministic, and found for the bots whose rules read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.demo import positioning_scopes
from engine.feeds.join import asof
from engine.feeds.observations import check_observation, to_arrays
from engine.feeds.synth import GENERATED, POSITIONING_MEMBERS, synth_positioning
from engine.indicators._divergence import consensus_shift

ROOT = Path(__file__).resolve().parents[3]
SCOPE = "binanceusdm:XRP/USDT:USDT"
MIN = 60 * 10**9


def test_periods_are_known_at_their_end_and_funding_every_eight_hours():
    observations = synth_positioning(SCOPE, "2024-01-01", "2024-01-03")
    assert all(check_observation(o) is None and o.source == GENERATED for o in observations)
    by_series: dict[str, list] = {}
    for o in observations:
        by_series.setdefault(o.series, []).append(o)
    assert set(by_series) == {f"pos.{m}@{SCOPE}" for m in POSITIONING_MEMBERS} | {f"funding.rate@{SCOPE}"}
    top = by_series[f"pos.top_position_ratio@{SCOPE}"]
    assert len(top) == 2 * 288 + 1
    assert {o.available_at - o.event_time for o in top} == {6 * MIN}  # 5-minute period end + 1 minute
    assert {o.event_time % (5 * MIN) for o in top} == {0}
    funding = by_series[f"funding.rate@{SCOPE}"]
    hours = [pd.Timestamp(o.event_time, tz="UTC").hour for o in funding]
    assert hours[:3] == [0, 8, 16] and {o.available_at - o.event_time for o in funding} == {MIN}
    assert all(abs(o.value) < 0.002 for o in funding)


def test_the_same_range_gives_the_same_values_and_the_ratios_cross_one():
    first = synth_positioning(SCOPE, "2024-01-01", "2024-01-10")
    assert first == synth_positioning(SCOPE, "2024-01-01", "2024-01-10")
    assert first != synth_positioning("binanceusdm:BTC/USDT:USDT", "2024-01-01", "2024-01-10")
    series = {}
    for name in ("top_position_ratio", "global_account_ratio"):
        series[name] = to_arrays([o for o in first if o.series == f"pos.{name}@{SCOPE}"])
    closes = pd.date_range("2024-01-02", "2024-01-10", freq="5min").as_unit("ns").asi8
    top = asof(closes, series["top_position_ratio"], 3600 * 10**9)
    crowd = asof(closes, series["global_account_ratio"], 3600 * 10**9)
    shifts = consensus_shift(top, crowd, 1.0)
    assert (shifts > 0).sum() >= 8  # about two a day: an example strategy has entries to take
    assert not np.isnan(top).any()


def test_the_demo_generates_them_for_the_bots_that_read_them():
    scopes = positioning_scopes(sorted((ROOT / "bots").glob("*.yaml")))
    assert scopes == [(SCOPE, "pos", "funding")]
