"""LiveSignals on numpy windows and the array plan: the same signals, candle by candle, as the signals
frame's last row on the same window (the previous behaviour), including across hot reloads; and the
window keeps the newest ``capacity`` candles exactly as the deque-based one did."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from engine.config import load_strategy
from engine.strategy import compute_signals
from engine.strategy.live import LiveSignals
from engine.trading.trader import Signals
from tests.engine.strategy.conftest import EXAMPLES, synthetic

CANDLES = synthetic(4000, seed=21, gaps=True)


def _expected(strategy, history: pd.DataFrame, capacity: int) -> Signals:
    """What LiveSignals returned before the array path: the signals frame's last row on the window."""
    last = compute_signals(strategy, history.iloc[-capacity:]).iloc[-1]
    warm = len(history) > strategy.warmup
    stop = float(last["stop_distance"])
    return Signals(
        entry_long=bool(last["entry_long"]) and warm,
        exit_long=bool(last["exit_long"]),
        entry_short=bool(last["entry_short"]) and warm,
        exit_short=bool(last["exit_short"]),
        stop_distance=stop if not math.isnan(stop) else math.nan,
        take_profit_distance=float(last["take_profit_distance"]),
        size=float(last["size"]) if "size" in last else 1.0,  # a strategy's `size:`; 1.0 without
    )


def _key(signals: Signals) -> tuple:
    # NaN-aware and type-strict: a numpy bool where a bool belongs would be a change too.
    return tuple(
        ("nan" if isinstance(v, float) and math.isnan(v) else (type(v).__name__, v))
        for v in dataclasses.astuple(signals)
    )


def _feed(live: LiveSignals, pair: str, candles: pd.DataFrame) -> list[Signals]:
    out = []
    for time, row in zip(candles.index, candles.itertuples(index=False), strict=True):
        candle, signals = live.on_candle(pair, time, row.open, row.high, row.low, row.close, row.volume)
        assert (candle.time == time.value and candle.close == row.close) or math.isnan(row.close)
        out.append(signals)
    return out


def _same_frame(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(actual, expected, check_freq=False, check_exact=True)


def _strategies(mixed_strategy):
    return [load_strategy(path) for path in EXAMPLES] + [mixed_strategy]


@pytest.mark.parametrize("capacity", [None, 300])
def test_on_candle_equals_the_last_row_of_compute_signals(mixed_strategy, capacity):
    for strategy in _strategies(mixed_strategy):
        live = LiveSignals(strategy, max_history=capacity)
        size = live.capacity if capacity is None else capacity
        size = min(size, 1600)  # mtf_trend asks for 26,760 candles; a shorter seed still fills the test
        seed, start = (CANDLES.iloc[: size - 60], size - 60)
        live.seed("A/B", seed)
        stream = CANDLES.iloc[start : start + 80]
        produced = _feed(live, "A/B", stream)
        for k, signals in enumerate(produced):
            history = CANDLES.iloc[: start + k + 1]
            assert _key(signals) == _key(_expected(strategy, history, live.capacity)), (strategy.file, k)
        _same_frame(live.frame("A/B"), CANDLES.iloc[: start + 80].iloc[-live.capacity :])


def test_array_and_frame_paths_agree_side_by_side(mixed_strategy):
    for strategy in _strategies(mixed_strategy):
        fast, slow = (
            LiveSignals(strategy, max_history=700),
            LiveSignals(strategy, max_history=700, arrays=False),
        )
        for live in (fast, slow):
            live.seed("X/Y", CANDLES.iloc[:650])
        a, b = _feed(fast, "X/Y", CANDLES.iloc[650:750]), _feed(slow, "X/Y", CANDLES.iloc[650:750])
        assert [_key(s) for s in a] == [_key(s) for s in b], strategy.file


def test_signals_fire_in_these_comparisons(mixed_strategy):
    strategy = load_strategy(EXAMPLES[[p.stem for p in EXAMPLES].index("ema_rsi")])
    live = LiveSignals(strategy, max_history=400)
    live.seed("A/B", CANDLES.iloc[:300])
    produced = _feed(live, "A/B", CANDLES.iloc[300:1500])
    assert sum(s.entry_long for s in produced) >= 3 and sum(s.exit_long for s in produced) >= 3
    assert any(math.isfinite(s.stop_distance) for s in produced)


def test_replace_strategy_resizes_keeping_the_newest_candles(mixed_strategy):
    names = [p.stem for p in EXAMPLES]
    ema_rsi = load_strategy(EXAMPLES[names.index("ema_rsi")])
    donchian = load_strategy(EXAMPLES[names.index("donchian_breakout")])
    live = LiveSignals(ema_rsi)
    assert live.capacity == 1160
    live.seed("A/B", CANDLES.iloc[:1300])
    seen, held = 1300, 1160
    # grow (1570), shrink (1160), shrink hard (max_history 200), grow back (mixed: 4440)
    for strategy, limit in ((donchian, None), (ema_rsi, None), (ema_rsi, 200), (mixed_strategy, None)):
        live.max_history = limit
        live.replace_strategy(strategy)
        held = min(held, live.capacity)  # a window cannot get back candles it dropped
        _same_frame(live.frame("A/B"), CANDLES.iloc[seen - held : seen])
        for k, signals in enumerate(_feed(live, "A/B", CANDLES.iloc[seen : seen + 25])):
            held = min(held + 1, live.capacity)
            expected = _expected(strategy, CANDLES.iloc[: seen + k + 1], held)
            assert _key(signals) == _key(expected), (strategy.file, k)
        seen += 25
        assert live._windows["A/B"].candles_seen == seen


def test_window_wraps_around_its_buffer_and_keeps_the_newest_rows(mixed_strategy):
    live = LiveSignals(mixed_strategy, max_history=7)
    candles = synthetic(60, seed=2)
    for count in range(1, 61):
        row = candles.iloc[count - 1]
        live.append("P/Q", row.name.value, tuple(row))
        _same_frame(live.frame("P/Q"), candles.iloc[max(0, count - 7) : count])
    assert live._windows["P/Q"].candles_seen == 60


def test_frame_is_a_copy():
    strategy = load_strategy(EXAMPLES[0])
    live = LiveSignals(strategy, max_history=5)
    live.seed("A/B", CANDLES.iloc[:5])
    frame = live.frame("A/B")
    frame.iloc[:, :] = 0.0
    _same_frame(live.frame("A/B"), CANDLES.iloc[:5])


def test_candles_must_move_forward():
    strategy = load_strategy(EXAMPLES[0])
    live = LiveSignals(strategy, max_history=50)
    live.seed("A/B", CANDLES.iloc[:10])
    last = CANDLES.index[9]
    with pytest.raises(ValueError, match="is not after the last one"):
        live.on_candle("A/B", last, 1.0, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="is not after the last one"):
        live.append("A/B", int(last.value) - 1, (1.0, 1.0, 1.0, 1.0, 1.0))
    # A seed with a step back takes the candles before it, then refuses, as appending one by one did.
    bad = pd.concat([CANDLES.iloc[10:13], CANDLES.iloc[11:12]])
    with pytest.raises(ValueError, match="is not after the last one"):
        live.seed("A/B", bad)
    _same_frame(live.frame("A/B"), CANDLES.iloc[:13])
    assert live._windows["A/B"].candles_seen == 13
    # another pair has its own window
    live.seed("C/D", CANDLES.iloc[:3])
    assert len(live.frame("C/D")) == 3


def test_on_candle_accepts_int_and_timestamp_times():
    strategy = load_strategy(EXAMPLES[0])
    live = LiveSignals(strategy, max_history=20)
    t0 = CANDLES.index[0]
    candle, _ = live.on_candle("A/B", t0, 1.0, 2.0, 0.5, 1.5, 10.0)
    candle2, _ = live.on_candle("A/B", int(CANDLES.index[1].value), 1.0, 2.0, 0.5, 1.5, 10.0)
    assert candle.time == t0.value and candle2.time == CANDLES.index[1].value
    assert list(live.frame("A/B").index) == list(CANDLES.index[:2])
    assert np.array_equal(live.frame("A/B").to_numpy(), np.array([[1.0, 2.0, 0.5, 1.5, 10.0]] * 2))


@pytest.mark.parametrize("capacity", [1, 7, 50])
def test_seeding_in_chunks_equals_appending_one_by_one(mixed_strategy, capacity):
    rng = np.random.default_rng(capacity)
    candles = synthetic(400, seed=4)
    chunked, single = (
        LiveSignals(mixed_strategy, max_history=capacity),
        LiveSignals(mixed_strategy, max_history=capacity),
    )
    position = 0
    while position < len(candles):
        size = int(rng.choice([0, 1, 2, capacity - 1, capacity, capacity + 3, 60]))
        part = candles.iloc[position : position + max(size, 0)]
        chunked.seed("A/B", part)
        for row in part.itertuples():
            single.append("A/B", row.Index.value, (row.open, row.high, row.low, row.close, row.volume))
        position += len(part)
        if position:
            _same_frame(chunked.frame("A/B"), single.frame("A/B"))
            _same_frame(chunked.frame("A/B"), candles.iloc[max(0, position - capacity) : position])
            assert chunked._windows["A/B"].candles_seen == position
