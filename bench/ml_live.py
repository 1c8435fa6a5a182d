"""Live ML cost per pair and candle close, before and after the incremental feature path (issue 13).

    .venv/bin/python bench/ml_live.py              # 2,000 closes of ETH/BTC 5m
    .venv/bin/python bench/ml_live.py --closes 5000

What `ml.<model>.*` costs a running bot at each close of one pair, with the benchmark's FreqAI-like
model (16 features, 200 trees), the production model retrained daily: candles after its training data
are predicted from the candles themselves, so by the end of a day 288 rows of the strategy's window
need a prediction.

- before: the path up to commit 5abc831: the plan over the whole window (warm-up + 1 candles), then a
  prediction of every row after the model's data (1 to 288 rows);
- after: engine.ml.live_rows.LiveRows: rows predicted at an earlier close reused, the new candle's
  features streamed (engine.ml.incremental), one prediction.

Components are printed too: the plan over the window against one streamed step, and one prediction.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ml_walkforward import DATA, MODEL  # noqa: E402

from engine.config import load_model  # noqa: E402
from engine.data import DataDirectory  # noqa: E402
from engine.ml.features import feature_matrix  # noqa: E402
from engine.ml.incremental import streamer  # noqa: E402
from engine.ml.live_rows import LiveRows  # noqa: E402
from engine.ml.pipeline import pair_data  # noqa: E402
from engine.ml.walkforward import fit_latest  # noqa: E402

DAY = 288  # 5m candles


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--closes", type=int, default=2000, help="candle closes timed (after a warm-up)")
    parser.add_argument("--pair", default="ETH/BTC")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.yaml"
        path.write_text(MODEL.format(pairs=args.pair, max_bin=63))
        loaded = load_model(path)
    candles = DataDirectory(DATA).load(args.pair, "5m")
    window = loaded.plan.warmup + 1
    first = len(candles) - args.closes  # index of the first close's newest candle + 1
    # The production model: trained on the candles before the first timed close.
    fitted = fit_latest(loaded.model, [pair_data(loaded, args.pair, candles.iloc[:first])])[args.pair]
    opens_all = candles.index.as_unit("ns").asi8

    def rows_after_model(end: int, opens: np.ndarray) -> np.ndarray:
        # A daily retrain: the model in production knows candles up to the last day boundary.
        data_end = opens_all[first - 1 + ((end - first) // DAY) * DAY]
        return np.flatnonzero(opens > data_end)

    before, after, plan_only, step_only, predict_one, predicted = [], [], [], [], [], []
    live = LiveRows("bench")
    stream = streamer(loaded.plan, loaded.feature_names)
    assert stream is not None, "the benchmark's features all have a streamed step"
    columns = {c: candles[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")}
    stream.feed({c: v[first - window : first] for c, v in columns.items()}, opens_all[first - window : first])
    for end in range(first + 1, len(candles) + 1):
        frame = candles.iloc[end - window : end]
        opens = opens_all[end - window : end]
        rows = rows_after_model(end, opens)
        t0 = time.perf_counter()
        x = feature_matrix(loaded.plan, loaded.feature_names, frame)
        fitted.predict_proba(x[rows])
        t1 = time.perf_counter()
        live.predict(loaded, fitted, frame, opens, rows, None)
        t2 = time.perf_counter()
        i = end - 1
        stream.step({c: float(v[i]) for c, v in columns.items()}, int(opens_all[i]))
        t3 = time.perf_counter()
        fitted.predict_proba(x[-1:])
        t4 = time.perf_counter()
        before.append(t1 - t0)
        after.append(t2 - t1)
        plan_only.append(t1 - t0)
        step_only.append(t3 - t2)
        predict_one.append(t4 - t3)
        predicted.append(len(rows))
    # The plan alone (without the predictions of the "before" path), on a second pass.
    plan_only = []
    for end in range(first + 1, len(candles) + 1):
        frame = candles.iloc[end - window : end]
        t0 = time.perf_counter()
        feature_matrix(loaded.plan, loaded.feature_names, frame)
        plan_only.append(time.perf_counter() - t0)

    def q(values: list[float], p: float) -> str:
        return f"{np.percentile(np.array(values) * 1e3, p):.3f} ms"

    print(
        f"{args.pair}, {args.closes} closes, window {window} candles, model retrained daily "
        f"(1..{max(predicted)} rows after its data), load average {os.getloadavg()[0]:.1f}\n"
    )
    print(f"{'per close':44}{'p50':>12}{'p99':>12}")
    print(f"{'before: plan over the window + rows predicted':44}{q(before, 50):>12}{q(before, 99):>12}")
    print(f"{'after: LiveRows (streamed row, cached rows)':44}{q(after, 50):>12}{q(after, 99):>12}")
    print(f"{'  features: plan over the window':44}{q(plan_only, 50):>12}{q(plan_only, 99):>12}")
    print(f"{'  features: one streamed step':44}{q(step_only, 50):>12}{q(step_only, 99):>12}")
    print(f"{'  one prediction (200 trees)':44}{q(predict_one, 50):>12}{q(predict_one, 99):>12}")
    print(
        f"\nLiveRows: {live.batch_rows} rows from the batch path (the first close), "
        f"{live.streamed_rows} streamed (closes at a simulated retrain predict no row)"
    )


if __name__ == "__main__":
    main()
