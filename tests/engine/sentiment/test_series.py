"""Sentiment, news counts and events in rules: point-in-time aggregates, the prefix test, compile-time
checks of the names, and the join at candle closes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsl import DiagnosticError, Source, compile_expression
from engine.config._project import project_registry
from engine.feeds.context import EvalContext
from engine.feeds.observations import NS_PER_SECOND, Observation, to_arrays
from engine.feeds.store import SeriesReader
from engine.sentiment.series import count_within, decayed_score

T0 = int(pd.Timestamp("2024-01-01", tz="UTC").value)
H = 3600 * NS_PER_SECOND


def obs(series: str, event_h: float, avail_h: float, value: float) -> Observation:
    return Observation(series, T0 + int(event_h * H), T0 + int(avail_h * H), value, "sentiment")


def candles(hours: int, freq: str = "1h") -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=hours, freq=freq, tz="UTC")
    return pd.DataFrame(dict.fromkeys(("open", "high", "low", "close", "volume"), 1.0), index=index)


def test_decayed_mean_uses_only_known_items_and_model_revisions_from_their_answer() -> None:
    items = to_arrays([obs("i", 0, 0.5, 0.8), obs("i", 2, 2.5, -0.4)])
    revisions = to_arrays([obs("r", 0, 3.5, -0.6)])  # the model said 0.2 for the first item, at 03:30
    times = np.array([T0 + h * H for h in (0, 1, 2, 3, 4)])
    out = decayed_score(times, items, revisions, half_life_ns=2 * H, max_age_ns=24 * H)
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.8) and out[2] == pytest.approx(0.8)
    w1, w2 = 2 ** (-3 / 2), 2 ** (-1 / 2)  # at 03:00 the first item is 3 h old, the second 1 h
    assert out[3] == pytest.approx((0.8 * w1 - 0.4 * w2) / (w1 + w2))
    w1, w2 = 2 ** (-4 / 2), 2 ** (-2 / 2)
    assert out[4] == pytest.approx((0.2 * w1 - 0.4 * w2) / (w1 + w2))


def test_score_is_missing_when_the_news_is_stale() -> None:
    items = to_arrays([obs("i", 0, 0, 0.5)])
    times = np.array([T0 + 1 * H, T0 + 30 * H])
    out = decayed_score(times, items, to_arrays([]), half_life_ns=6 * H, max_age_ns=24 * H)
    assert out[0] == pytest.approx(0.5) and np.isnan(out[1])


def test_counts_are_windows_of_availability() -> None:
    series = to_arrays([obs("c", 0, 0.2, 1), obs("c", 0.5, 0.9, 1), obs("c", 0.9, 1.0, 1)])
    times = np.array([T0 + int(h * H) for h in (0.1, 0.95, 1.0, 1.5, 2.0)])
    assert count_within(times, series, H).tolist() == [0, 2, 3, 2, 0]


def reader() -> SeriesReader:
    rng = np.random.default_rng(7)
    rows: list[Observation] = []
    for k in range(200):
        published = rng.uniform(0, 96)
        lag = rng.uniform(0.05, 0.3)
        rows.append(obs("news.btc.item", published, published + lag, float(rng.uniform(-1, 1))))
        if k % 5 == 0:
            rows.append(
                obs(
                    "news.btc.revision",
                    published,
                    published + lag + rng.uniform(0, 2),
                    float(rng.uniform(-0.5, 0.5)),
                )
            )
        if k % 40 == 0:
            rows.append(obs("events.btc.hack", published, published + lag, 1.0))
    series: dict[str, list[Observation]] = {}
    for row in rows:
        series.setdefault(row.series, []).append(row)
    return SeriesReader({k: to_arrays(v) for k, v in series.items()})


RULES = [
    "sentiment.btc.score",
    "sentiment.btc.score_1h",
    "news.btc.count_1h",
    "events.btc.hack_24h",
    "events.btc.any_1h",
]


@pytest.mark.parametrize("rule", RULES)
def test_prefix_property(rule: str) -> None:
    """Evaluating on candles cut at t gives the same values up to t as evaluating on all of them."""
    registry = project_registry(Path(__file__).parent)
    plan = compile_expression(Source(rule, "<rule>"), registry, "15m", {})
    full = candles(4 * 96, "15min")
    context = EvalContext("BTC/USDT", reader=reader())
    everything = plan.evaluate(full, context).iloc[:, 0].to_numpy()
    assert np.isfinite(everything).sum() > 100
    for cut in (10, 97, 200, 383):
        part = plan.evaluate(full.iloc[:cut], context).iloc[:, 0].to_numpy()
        np.testing.assert_array_equal(part, everything[:cut])


def test_a_rule_sees_an_item_only_from_the_close_after_it_became_known() -> None:
    registry = project_registry(Path(__file__).parent)
    plan = compile_expression(Source("news.eth.count_24h", "<rule>"), registry, "1h", {})
    # Published 00:10, known 00:15 (lag): first counted at the close of the 00:00 candle (01:00).
    context = EvalContext(
        "ETH/USDT",
        reader=SeriesReader({"news.eth.item": to_arrays([obs("news.eth.item", 1 / 6, 0.25, 0.3)])}),
    )
    assert plan.evaluate(candles(3), context).iloc[:, 0].tolist() == [1.0, 1.0, 1.0]
    # A candle closing before it was known does not see it (15m candles: the 00:00 one closes 00:15).
    plan15 = compile_expression(Source("news.eth.count_24h", "<rule>"), registry, "15m", {})
    frame = pd.DataFrame(
        dict.fromkeys(("open", "high", "low", "close", "volume"), 1.0),
        index=pd.date_range("2023-12-31 23:45", periods=3, freq="15min", tz="UTC"),
    )
    assert plan15.evaluate(frame, context).iloc[:, 0].tolist() == [0.0, 1.0, 1.0]
    assert plan.evaluate(candles(3)).iloc[:, 0].isna().all()  # without a run's data nothing is known


def test_names_are_checked_when_rules_compile(tmp_path: Path) -> None:
    registry = project_registry(tmp_path)
    assert {"sentiment", "news", "events"} <= set(registry.feeds)
    compile_expression(
        Source("sentiment.btc.score > 0.2 and events.eth.hack_24h == 0", "<rule>"), registry, "5m", {}
    )
    with pytest.raises(DiagnosticError, match="unknown member 'scor'"):
        compile_expression(Source("sentiment.btc.scor > 0", "<rule>"), registry, "5m", {})
    with pytest.raises(DiagnosticError, match="unknown member 'rugpull_24h'"):
        compile_expression(Source("events.btc.rugpull_24h > 0", "<rule>"), registry, "5m", {})
    with pytest.raises(DiagnosticError, match=r"write sentiment.<coin>.<member>"):
        compile_expression(Source("sentiment.score > 0", "<rule>"), registry, "5m", {})


def test_half_life_comes_from_sentiment_yaml(tmp_path: Path) -> None:
    items = to_arrays([obs("news.btc.item", 0, 0, 1.0), obs("news.btc.item", 4, 4, -1.0)])
    context = EvalContext("BTC/USDT", reader=SeriesReader({"news.btc.item": items}))
    frame = candles(5)
    values = {}
    for half_life in ("1h", "24h"):
        root = tmp_path / half_life
        root.mkdir()
        (root / "sentiment.yaml").write_text(f"half_life: {half_life}\n")
        plan = compile_expression(Source("sentiment.btc.score", "<rule>"), project_registry(root), "1h", {})
        values[half_life] = plan.evaluate(frame, context).iloc[-1, 0]
    # At 05:00 the newer, negative item dominates more with the short half-life.
    assert values["1h"] < values["24h"] < 0


def _naive(times, items, revisions, half_life_ns, max_age_ns):
    out = []
    for t in times:
        k = items.available_at <= t
        if not k.any() or t - items.event_time[k].max() > max_age_ns:
            out.append(np.nan)
            continue
        w = np.exp2(-(t - items.event_time[k]) / half_life_ns)
        r = revisions.available_at <= t
        wr = np.exp2(-(t - revisions.event_time[r]) / half_life_ns)
        out.append(
            float(np.clip(((w * items.value[k]).sum() + (wr * revisions.value[r]).sum()) / w.sum(), -1, 1))
        )
    return np.array(out)


def test_vectorised_score_equals_the_definition_over_years() -> None:
    rng = np.random.default_rng(5)
    # Two years of sparse news with a 2 h half-life: 8,760 half-lives, far past float64's exponent range.
    published = np.sort(rng.uniform(0, 2 * 365 * 24, 600))
    items = to_arrays([obs("i", p, p + 0.2, float(rng.uniform(-1, 1))) for p in published])
    revisions = to_arrays([obs("r", p, p + 1.5, float(rng.uniform(-0.5, 0.5))) for p in published[::4]])
    times = np.array([T0 + int(h * H) for h in np.linspace(0, 2 * 365 * 24, 3000)])
    fast = decayed_score(times, items, revisions, 2 * H, 72 * H)
    slow = _naive(times, items, revisions, 2 * H, 72 * H)
    assert np.isfinite(fast).sum() > 500
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-12)
