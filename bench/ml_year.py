"""One LightGBM model on 10 pairs x 1 year of 5m candles (~1.05 M rows, 51 features): time and memory.

    .venv/bin/python bench/ml_year.py               # max_bin 63 (the default)
    .venv/bin/python bench/ml_year.py --max-bin 255

The issue's second speed figure. ../shared/data/binance holds 20 days per pair, not a year, so the
candles are generated: a seeded geometric random walk per pair (timing and memory do not depend on
what the prices mean; the model learns nothing, and that is not measured). Features: RSI, MFI, ADX,
close/SMA, close/EMA, rate of change and volume over its mean for 7 periods (5..100), the candle's
change and the hour = 51. The run is a fresh interpreter (the engine's own functions: features and
labels per pair, then engine.ml.walkforward.fit_latest, the function `engine ml train` uses for the
model it saves, trained on the whole year, 200 trees, on every core). Peak memory: the process's
peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERIODS = (5, 10, 14, 20, 30, 50, 100)
PAIRS = 10
CANDLES = 365 * 288

CHILD = """
import json, os, sys, time, resource
t0 = time.perf_counter()
if os.environ.get("ML_BENCH_SRC"):  # a baseline: the engine and dsl packages of an older revision
    sys.path.insert(0, os.environ["ML_BENCH_SRC"])
import numpy as np, pandas as pd
from engine.config import load_model
from engine.ml.pipeline import pair_data
from engine.ml.walkforward import fit_latest
loaded = load_model(sys.argv[1])
pairs_n, n = int(sys.argv[2]), int(sys.argv[3])
t1 = time.perf_counter()
pairs = []
for p in range(pairs_n):
    rng = np.random.default_rng(p)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0.0, 0.001, n))
    candles = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * (1 + spread),
        "low": np.minimum(open_, close) * (1 - spread), "close": close, "volume": rng.uniform(0.5, 1.5, n)},
        index=pd.date_range("2023-01-01", periods=n, freq="5min", tz="UTC"))
    pairs.append(pair_data(loaded, f"P{p}/USDT", candles))
    del candles
t2 = time.perf_counter()
models = fit_latest(loaded.model, pairs)
t3 = time.perf_counter()
rows = sum(len(d.times) for d in pairs)
print(json.dumps({"setup_s": t1 - t0, "features_s": t2 - t1, "fit_s": t3 - t2, "rows": rows,
  "features": pairs[0].x.shape[1], "trees": models["all"]._booster().num_trees(),
  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def model_text(max_bin: int) -> str:
    features = {}
    for n in PERIODS:
        features.update(
            {
                f"rsi{n}": f"rsi(close, {n})",
                f"mfi{n}": f"mfi({n})",
                f"adx{n}": f"adx({n})",
                f"close_sma{n}": f"close / sma(close, {n})",
                f"close_ema{n}": f"close / ema(close, {n})",
                f"roc{n}": f"roc(close, {n})",
                f"volume{n}": f"volume / sma(volume, {n})",
            }
        )
    features.update({"pct_change": "close / close[1] - 1", "hour": "hour()"})
    lines = "\n".join(f"  {k}: {v}" for k, v in features.items())
    pairs = ", ".join(f"P{p}/USDT" for p in range(PAIRS))
    return (
        f"model: year\ntimeframe: 5m\npairs: [{pairs}]\nfeatures:\n{lines}\n"
        "label:\n  type: direction\n  horizon: 12\n"
        f"learner:\n  type: lightgbm\n  trees: 200\n  learning_rate: 0.05\n  leaves: 31\n  max_bin: {max_bin}\n"
        "windows:\n  train: 366d\n  step: 1d\n"
    )


def run(model: Path, days: int, source: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ML_BENCH_SRC"}
    if source is not None:
        env["ML_BENCH_SRC"] = str(source)
    start = time.perf_counter()
    before = os.times()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(model), str(PAIRS), str(days * 288)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = os.times()
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    r = json.loads(out.stdout.strip().splitlines()[-1])
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {**r, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-bin", type=int, default=63)
    parser.add_argument("--days", type=int, default=365, help="days of 5m candles per pair")
    parser.add_argument("--baseline", metavar="REV", help="also run the engine as of this git revision")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from ml_walkforward import extract

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "year.yaml"
        path.write_text(model_text(args.max_bin))
        labels = ([args.baseline[:7]] if args.baseline else []) + ["ours"]
        sources = ([extract(args.baseline, Path(folder))] if args.baseline else []) + [None]
        results = [run(path, args.days, src) for src in sources]
    r = results[-1]
    print(
        f"{r['rows']:,} rows x {r['features']} features (10 pairs x {args.days} days of 5m), one model, "
        f"{r['trees']} trees, max_bin {args.max_bin}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print(f"{'':28}" + "".join(f"{label:>12}" for label in labels))
    for name, key, unit in (
        ("whole process, wall", "wall_s", "s"),
        ("  CPU seconds", "cpu_s", "s"),
        ("  start-up", "setup_s", "s"),
        ("  features and labels", "features_s", "s"),
        ("  fit (200 trees)", "fit_s", "s"),
        ("peak memory (RSS)", "peak_rss_mib", "MiB"),
    ):
        cells = "".join(
            f"{x[key]:>8.0f} {unit:<3}" if unit == "MiB" else f"{x[key]:>8.1f} {unit:<3}" for x in results
        )
        print(f"{name:28}{cells}")


if __name__ == "__main__":
    main()
