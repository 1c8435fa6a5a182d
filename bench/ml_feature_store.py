"""The feature store (issue 13): features of 10 pairs without it, then cold, warm and one day later.

    .venv/bin/python bench/ml_feature_store.py              # the 10 real 5m pairs, 20 days each
    .venv/bin/python bench/ml_feature_store.py --year       # and 10 generated pairs x 1 year, 51 features

Real: the FreqAI-like model of bench/ml_walkforward.py (16 features) on the 10 5m pairs of
../shared/data/binance, read in place. Each round, with a fresh empty store:

- ``no store``: the features computed from the candles, as ``--no-feature-cache`` does;
- ``cold``: the candles minus their last day, computed and written to the store;
- ``warm``: the same candles again: read only;
- ``+1 day``: the whole candles: the stored rows read, the new day computed from its look-back,
  compared with the stored overlap, appended and written.

Times are of ``load_pairs``-equivalent feature work only (candles are loaded before the clock starts,
labels left out), median of ``--rounds`` in one process: wall time, and this process's CPU time
(which moves less than wall time on a shared machine, and leaves out waiting for the disk). ``--year``: the same on the generated year of
bench/ml_year.py (105,120 candles per pair, 51 features), where computing is no longer cheap.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from engine.config import load_model  # noqa: E402
from engine.data import DataDirectory  # noqa: E402
from engine.ml.feature_store import FeatureStore  # noqa: E402
from engine.ml.features import feature_matrix  # noqa: E402

DAY = 288


def _model(text: str, folder: Path):
    path = folder / "model.yaml"
    path.write_text(text)
    return load_model(path)


def _real(folder: Path):
    from ml_walkforward import DATA, MODEL, PAIRS

    loaded = _model(MODEL.format(pairs=", ".join(PAIRS), max_bin=63), folder)
    source = DataDirectory(DATA)
    return loaded, {pair: source.load(pair, "5m") for pair in PAIRS}


def _year(folder: Path):
    from ml_year import CANDLES, PAIRS, model_text

    loaded = _model(model_text(63), folder)
    out = {}
    for p in range(PAIRS):
        rng = np.random.default_rng(p)
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, CANDLES)))
        open_ = np.concatenate(([100.0], close[:-1]))
        spread = np.abs(rng.normal(0.0, 0.001, CANDLES))
        out[f"P{p}/USDT"] = pd.DataFrame(
            {
                "open": open_,
                "high": np.maximum(open_, close) * (1 + spread),
                "low": np.minimum(open_, close) * (1 - spread),
                "close": close,
                "volume": rng.uniform(0.5, 1.5, CANDLES),
            },
            index=pd.date_range("2023-01-01", periods=CANDLES, freq="5min", tz="UTC"),
        )
    return loaded, out


def _round(loaded, candles: dict[str, pd.DataFrame], root: Path) -> dict[str, tuple[float, int, int, int]]:
    """Seconds, rows computed, rows new, rows read per step."""
    plan, names = loaded.plan, loaded.feature_names
    out = {}
    start, cpu = time.perf_counter(), time.process_time()
    for frame in candles.values():
        feature_matrix(plan, names, frame)
    out["no store"] = (time.perf_counter() - start, sum(map(len, candles.values())), 0, 0)
    out["no store cpu"] = (time.process_time() - cpu, 0, 0, 0)
    store = FeatureStore(root)
    for step, cut in (("cold", -DAY), ("warm", -DAY), ("+1 day", None)):
        store.done.clear()
        start, cpu = time.perf_counter(), time.process_time()
        for pair, frame in candles.items():
            store.matrix(plan, names, frame.iloc[:cut], pair=pair, source="bench")
        seconds = time.perf_counter() - start
        out[f"{step} cpu"] = (time.process_time() - cpu, 0, 0, 0)
        results = [r for _, r in store.done]
        out[step] = (
            seconds,
            sum(r.computed for r in results),
            sum(r.new for r in results),
            sum(r.reused for r in results),
        )
        if step == "+1 day":
            assert all(r.action == "extended" for r in results), [r.reason for r in results]
    out["bytes"] = (float(sum(p.stat().st_size for p in root.rglob("*.parquet"))), 0, 0, 0)
    return out


def _report(title: str, loaded, candles: dict[str, pd.DataFrame], rounds: int) -> None:
    runs = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            runs.append(_round(loaded, candles, Path(folder)))
    rows = sum(map(len, candles.values()))
    print(
        f"\n{title}: {len(candles)} pairs, {rows:,} candles, {len(loaded.feature_names)} features, median of {rounds}"
    )
    print(f"{'step':<10} {'wall s':>8} {'CPU s':>8} {'computed rows':>14} {'new rows':>9} {'read rows':>10}")
    for step in ("no store", "cold", "warm", "+1 day"):
        seconds = statistics.median(r[step][0] for r in runs)
        cpu = statistics.median(r[f"{step} cpu"][0] for r in runs)
        _, computed, new, read = runs[0][step]
        print(f"{step:<10} {seconds:>8.3f} {cpu:>8.3f} {computed:>14,} {new:>9,} {read:>10,}")
    print(f"store on disk: {runs[0]['bytes'][0] / 2**20:.1f} MiB (Parquet, uncompressed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--year", action="store_true", help="also 10 generated pairs x 1 year, 51 features")
    args = parser.parse_args()
    print(f"load before: {Path('/proc/loadavg').read_text().split()[:3]}")
    with tempfile.TemporaryDirectory() as folder:
        loaded, candles = _real(Path(folder))
        _report("real 5m candles (../shared/data/binance)", loaded, candles, args.rounds)
        if args.year:
            loaded, candles = _year(Path(folder))
            _report("generated year", loaded, candles, max(1, args.rounds // 2))
    print(f"load after: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
