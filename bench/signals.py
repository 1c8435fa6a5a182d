"""Signal computation benchmark: the array path against the pandas (frame) path, in the same run.

    .venv/bin/python bench/signals.py                     # every strategy under strategies/
    .venv/bin/python bench/signals.py --calls 500 --candles 200000 strategies/ema_rsi.yaml

Printed per strategy:
- ``on_candle``: median / p99 time of one ``LiveSignals.on_candle`` (window as in live: the strategy's
  ``capacity``, seeded first), with ``arrays=True`` (numpy windows, ``Plan.evaluate_arrays`` and
  ``last_signals``) and ``arrays=False`` (``compute_signals`` on ``frame()`` and its last row, as before);
- ``evaluate``: one ``Plan.evaluate`` over ``--candles`` candles with ``arrays=True`` and ``arrays=False``
  (every function handed pandas Series), and ``compute_signals`` on them (the backtester's call).
Both paths must give the same signals; the benchmark checks it on the candles it times.
Synthetic candles (``engine.data.synth``) on each strategy's timeframe; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def _signals_key(signals) -> tuple:
    # NaN != NaN: compare NaN stop distances by name.
    return tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in dataclasses.astuple(signals))


def _time_live(strategy, candles: pd.DataFrame, calls: int, arrays: bool) -> tuple[np.ndarray, list[tuple]]:
    from engine.strategy.live import LiveSignals

    live = LiveSignals(strategy, arrays=arrays)
    capacity = live.capacity
    live.seed("BENCH/X", candles.iloc[:capacity])
    stream = candles.iloc[capacity : capacity + calls]
    times = np.empty(len(stream))
    produced = []
    rows = stream.itertuples(index=False)
    for k, (stamp, row) in enumerate(zip(stream.index.as_unit("ns").asi8.tolist(), rows, strict=True)):
        start = time.perf_counter()
        _, signals = live.on_candle("BENCH/X", stamp, row.open, row.high, row.low, row.close, row.volume)
        times[k] = time.perf_counter() - start
        produced.append(_signals_key(signals))
    return times, produced


def _best_of(runs: int, call) -> float:
    best = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def bench(path: Path, calls: int, count: int) -> None:
    from engine.config import load_strategy
    from engine.data.synth import synth_candles
    from engine.strategy import compute_signals
    from engine.strategy.live import LiveSignals

    strategy = load_strategy(path)
    capacity = LiveSignals(strategy).capacity
    start = pd.Timestamp("2024-01-01", tz="UTC")
    candles = synth_candles(
        "BENCH/X", strategy.timeframe, start, periods=max(count, capacity + calls), seed=7
    )

    fast, fast_signals = _time_live(strategy, candles, calls, arrays=True)
    slow, slow_signals = _time_live(strategy, candles, calls, arrays=False)
    if fast_signals != slow_signals:
        raise SystemExit(f"{path.name}: the array path and the frame path disagree")
    ms = 1e3
    # Medians: on a busy machine a mean mostly measures the scheduler's time slices.
    fast_ms, slow_ms = np.median(fast) * ms, np.median(slow) * ms
    print(
        f"{path.stem:<22} window {capacity:>6}  on_candle median arrays {fast_ms:7.3f} ms "
        f"(p99 {np.percentile(fast, 99) * ms:6.3f})   frame {slow_ms:7.3f} ms "
        f"(p99 {np.percentile(slow, 99) * ms:6.3f})   x{slow_ms / fast_ms:5.1f}"
    )

    history = candles.iloc[:count]
    plan = strategy.plan
    pd.testing.assert_frame_equal(
        plan.evaluate(history), plan.evaluate(history, arrays=False), check_exact=True
    )
    runs = 3
    arrays_s = _best_of(runs, lambda: plan.evaluate(history))
    frame_s = _best_of(runs, lambda: plan.evaluate(history, arrays=False))
    signals_s = _best_of(runs, lambda: compute_signals(strategy, history))
    print(
        f"{'':<22} {len(history):>6} candles  evaluate arrays {arrays_s * ms:8.1f} ms   "
        f"frame {frame_s * ms:8.1f} ms   compute_signals {signals_s * ms:8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "strategies", nargs="*", type=Path, help="strategy files (default: strategies/*.yaml)"
    )
    parser.add_argument("--calls", type=int, default=300, help="on_candle calls timed per path")
    parser.add_argument(
        "--candles", type=int, default=100_000, help="candles for the whole-history evaluation"
    )
    args = parser.parse_args()
    paths = args.strategies or sorted((ROOT / "strategies").glob("*.yaml"))
    for path in paths:
        bench(path, args.calls, args.candles)


if __name__ == "__main__":
    main()
