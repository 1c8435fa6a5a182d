"""The point-in-time core: the as-of join, the store, feeds.yaml checks, the rule namespace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsl import DiagnosticError, Source, compile_expression
from engine.config._feeds import load_feeds
from engine.config._project import find_project_root, project_registry
from engine.feeds.context import EvalContext
from engine.feeds.join import asof, decision_times
from engine.feeds.observations import NS_PER_SECOND, Observation, to_arrays
from engine.feeds.store import SeriesReader, read_series, write_observations
from engine.store import create_engine_for, session_factory, upgrade_async

T0 = int(pd.Timestamp("2024-01-01", tz="UTC").value)
H = 3600 * NS_PER_SECOND


def obs(event_h: float, avail_h: float, value: float, series: str = "x.v") -> Observation:
    return Observation(series, T0 + int(event_h * H), T0 + int(avail_h * H), value, "test")


def test_asof_sees_only_what_was_known_at_each_time() -> None:
    series = to_arrays([obs(0, 1, 10.0), obs(1, 2, 11.0), obs(2, 5, 12.0)])
    times = np.array([T0 + int(h * H) for h in (0.5, 1, 1.5, 2, 4.99, 5, 9)])
    values = asof(times, series, None)
    assert np.isnan(values[0])
    assert list(values[1:]) == [10.0, 10.0, 11.0, 11.0, 12.0, 12.0]


def test_asof_drops_values_older_than_max_age() -> None:
    series = to_arrays([obs(0, 1, 10.0)])
    times = np.array([T0 + 1 * H, T0 + 3 * H, T0 + 3 * H + 1])
    assert list(np.isnan(asof(times, series, 3 * H))) == [False, False, True]


def test_a_late_revision_of_an_old_point_never_hides_a_newer_point() -> None:
    # Day 0 known at 1h, day 1 known at 25h, then day 0 revised at 30h.
    series = to_arrays([obs(0, 1, 10.0), obs(24, 25, 20.0), obs(0, 30, 9.0)])
    at = lambda h: asof(np.array([T0 + h * H]), series, None)[0]  # noqa: E731
    assert at(2) == 10.0 and at(26) == 20.0 and at(31) == 20.0
    # Revisions of the newest point do count from the moment they are known.
    revised = to_arrays([obs(0, 1, 10.0), obs(0, 3, 10.5)])
    assert asof(np.array([T0 + 2 * H, T0 + 3 * H]), revised, None).tolist() == [10.0, 10.5]


def test_prefix_property_on_random_series() -> None:
    rng = np.random.default_rng(7)
    events = np.sort(rng.integers(0, 500, 300))
    rows = [obs(float(e), float(e + rng.integers(0, 30)), float(rng.normal())) for e in events]
    times = T0 + np.arange(0, 600) * H
    full = asof(times, to_arrays(rows), 48 * H)
    for cut in (50, 200, 333, 599):
        known = [r for r in rows if r.available_at <= times[cut]]
        part = asof(times[: cut + 1], to_arrays(known), 48 * H)
        np.testing.assert_array_equal(part, full[: cut + 1])


def test_decision_time_is_the_candle_close() -> None:
    assert decision_times(np.array([T0]), 300 * NS_PER_SECOND)[0] == T0 + 300 * NS_PER_SECOND


@pytest.fixture
async def sessions(tmp_path: Path):
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


async def test_store_writes_once_refuses_malformed_and_keeps_revisions(sessions) -> None:
    rows = [obs(0, 1, 10.0), obs(1, 2, 11.0)]
    async with sessions() as session, session.begin():
        assert await write_observations(session, rows) == 2
    async with sessions() as session, session.begin():
        # The same data again changes nothing; a NaN, an inf and a time in ms are refused.
        bad = [
            obs(2, 3, float("nan")),
            obs(2, 3, float("inf")),
            Observation("x.v", T0 // 1_000_000, T0 // 1_000_000, 1.0, "t"),
        ]
        assert await write_observations(session, [*rows, *bad]) == 0
        # A revised value for a known time is a new row.
        assert await write_observations(session, [obs(1, 4, 11.5)]) == 1
    async with sessions() as session:
        series = await read_series(session, "x.v")
    assert series.value.tolist() == [10.0, 11.0, 11.5]


FEEDS_YAML = """\
services:
  coingeko: {}
feeds:
  mood:
    source: fear_gred
  dom:
    source: coingecko
    symbol: BTC
  flows:
    source: etherscan
    token: "0xdac17f958d2ee523a2206206994597c13d831ec7"
"""


def test_feeds_yaml_errors_carry_file_line_column_and_hints(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text(FEEDS_YAML)
    loaded = load_feeds(tmp_path, "feeds.yaml")
    shown = sorted(d.headline() for d in loaded.diagnostics)
    text = "\n".join(shown)
    assert "feeds.yaml:2:3: error[FEED001]: unknown service 'coingeko' (did you mean 'coingecko'?)" in text
    assert (
        "feeds.yaml:5:13: error[FEED001]: feed 'mood': unknown source 'fear_gred' (did you mean 'fear_greed'?)"
        in text
    )
    assert "feeds.yaml:8:5: error[FEED003]: feed 'dom': 'symbol' is not used by coingecko" in text
    assert "error[FEED004]: feed 'dom': source coingecko needs 'coin'" in text
    assert "error[FEED005]: feed 'flows': source etherscan needs an API key" in text
    # A broken file keeps the built-in feeds only.
    assert set(loaded.feeds) == {"fear_greed", "btc", "eth", "spx"}


def test_rules_name_feeds_with_members_checked_at_compile_time(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n  mine: {source: file, path: mine.csv, columns: [score, volume]}\n"
    )
    registry = project_registry(tmp_path)
    assert {"fear_greed", "btc", "spx", "mine"} <= set(registry.feeds)
    compile_expression(Source("mine.score > 1 and btc.dominance > 55", "<rule>"), registry, "5m", {})
    with pytest.raises(
        DiagnosticError, match=r"mine.scor: unknown member \(feed 'mine' has: score, volume\)"
    ):
        compile_expression(Source("mine.scor > 1", "<rule>"), registry, "5m", {})
    with pytest.raises(DiagnosticError, match=r"unknown feed 'fear_gred' \(did you mean 'fear_greed'\?\)"):
        compile_expression(Source("fear_gred.value > 1", "<rule>"), registry, "5m", {})


def test_project_root_is_found_from_a_strategy_file(tmp_path: Path) -> None:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "feeds.yaml").write_text("feeds: {}\n")
    assert find_project_root(tmp_path / "strategies" / "x.yaml") == tmp_path.resolve()


def test_a_rule_on_a_feed_reads_the_value_known_at_each_close() -> None:
    registry = project_registry(Path(__file__).parent)
    plan = compile_expression(Source("fear_greed.value", "<rule>"), registry, "1h", {})
    index = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC")
    candles = pd.DataFrame(dict.fromkeys(("open", "high", "low", "close", "volume"), 1.0), index=index)
    # Published at 01:30: first seen at the close of the 01:00 candle (02:00).
    reader = SeriesReader({"fear_greed.value": to_arrays([obs(0, 1.5, 20.0, "fear_greed.value")])})
    values = plan.evaluate(candles, EvalContext("BTC/USDT", reader=reader)).iloc[:, 0].tolist()
    assert np.isnan(values[0]) and values[1:] == [20.0, 20.0, 20.0]
    # Without a run's data nothing is known.
    assert plan.evaluate(candles).iloc[:, 0].isna().all()


def test_sorted_and_unsorted_times_join_alike() -> None:
    rng = np.random.default_rng(11)
    events = np.sort(rng.integers(0, 300, 200))
    rows = [obs(float(e), float(e + rng.integers(0, 20)), float(rng.normal())) for e in events]
    rows += [obs(float(e), float(e + 40), 99.0) for e in events[::17]]  # late revisions of old points
    series = to_arrays(rows)
    times = T0 + np.sort(rng.integers(0, 400, 1000)) * H
    sorted_values = asof(times, series, 30 * H)
    order = rng.permutation(len(times))
    shuffled = asof(times[order], series, 30 * H)
    np.testing.assert_array_equal(shuffled, sorted_values[order])


async def test_a_revised_value_counts_from_when_it_was_learned(sessions) -> None:
    async with sessions() as session, session.begin():
        await write_observations(session, [obs(0, 1, 10.0), obs(24, 25, 20.0)])
    async with sessions() as session, session.begin():
        # A re-fetch five days later: day 0 was revised to 10.5, day 1 is unchanged.
        again = [obs(0, 1, 10.5), obs(24, 25, 20.0)]
        assert await write_observations(session, again, now_ns=T0 + 120 * H) == 1
    async with sessions() as session:
        series = await read_series(session, "x.v")
    revised = series.available_at[series.value == 10.5]
    assert revised.tolist() == [T0 + 120 * H]
    # So a backtest at hour 30 still sees the value it would have seen live.
    assert asof(np.array([T0 + 30 * H]), series, None)[0] == 20.0
