"""Walk-forward ML benchmark against FreqAI's published figures (issue 13), whole process, cold.

    .venv/bin/python bench/ml_walkforward.py                       # max_bin 255, 63 (default), 31
    .venv/bin/python bench/ml_walkforward.py --runs 3 --max-bin 63 --baseline 32b8113

The FreqAI-like setup on the 10 real 5m pairs in ../shared/data/binance: features for periods 10 and 20
(RSI, MFI, ADX, close/SMA, close/EMA, rate of change) plus the candle's percentage change, volume over
its mean (10 and 20) and the hour of day; label: close 12 candles ahead above the close (up/down);
train on 5 days, step 1 day, one LightGBM model per pair and window (200 trees, learning rate 0.05,
31 leaves); predictions for 2018-01-16 00:00 .. 2018-01-29 23:55 = 14 windows x 10 pairs = 140 models.

Each run is a fresh interpreter (``python -c``: imports, candles, features, labels, 140 fits, metrics)
timed from start to exit by this process. Memory: the peak of the *proportional* set size (PSS) summed
over the process and its worker processes, sampled every 20 ms from /proc (PSS splits pages shared
after fork() between the processes, so the sum is the memory the run really holds), and the largest
single-process peak RSS. CPU seconds (user + system of the whole tree, and of the workers alone) are
printed too: on a shared machine they move less than wall time, and the idle-machine estimate is
built from them. ``max_bin`` is the one LightGBM setting the FreqAI description leaves open
(LightGBM's default, 255; model files default to 63). ``--baseline REV`` runs the engine as of an
older git revision beside the current one, round-robin, to show a change before and after under
the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "binance"
PAIRS = [
    "ADA/BTC",
    "DASH/BTC",
    "ETC/BTC",
    "ETH/BTC",
    "LTC/BTC",
    "NXT/BTC",
    "TRX/BTC",
    "XLM/BTC",
    "XMR/BTC",
    "ZEC/BTC",
]
START, END = "2018-01-16", "2018-01-30"

# FreqAI (freqtrade 2026, LightGBMClassifier, outlier removal and PCA off, 25% of each window as its
# eval set), this setup on this kind of machine: median of four cold runs.
FREQAI = {
    "wall_s": 36.7,
    "wall_range": "35.7-39.4",
    "fit_s": 28.6,
    "peak_mib": 530,
    "balanced_accuracy": 0.530,
    "accuracy": 0.532,
    "roc_auc": 0.545,
    "predictions": 40_320,
    "majority": 0.500,
}

MODEL = """\
model: freqai_like
timeframe: 5m
pairs: [{pairs}]
per_pair: true
features:
  rsi10: rsi(close, 10)
  rsi20: rsi(close, 20)
  mfi10: mfi(10)
  mfi20: mfi(20)
  adx10: adx(10)
  adx20: adx(20)
  close_sma10: close / sma(close, 10)
  close_sma20: close / sma(close, 20)
  close_ema10: close / ema(close, 10)
  close_ema20: close / ema(close, 20)
  roc10: roc(close, 10)
  roc20: roc(close, 20)
  pct_change: close / close[1] - 1
  volume10: volume / sma(volume, 10)
  volume20: volume / sma(volume, 20)
  hour: hour()
label:
  type: direction
  horizon: 12
learner:
  type: lightgbm
  trees: 200
  learning_rate: 0.05
  leaves: 31
  max_bin: {max_bin}
windows:
  train: 5d
  step: 1d
"""

CHILD = """
import json, os, sys, time
t0 = time.perf_counter()
if os.environ.get("ML_BENCH_SRC"):  # a baseline: the engine and dsl packages of an older revision
    sys.path.insert(0, os.environ["ML_BENCH_SRC"])
from engine.config import load_model
from engine.data import DataDirectory
from engine.ml.pipeline import evaluate, load_pairs, walkforward
t1 = time.perf_counter()
loaded = load_model(sys.argv[1])
pairs = load_pairs(loaded, DataDirectory(sys.argv[2]))
t2 = time.perf_counter()
wf = walkforward(loaded, pairs, start=sys.argv[3], end=sys.argv[4], workers=int(sys.argv[5]))
t3 = time.perf_counter()
m = evaluate(wf)
own, end = os.times(), time.perf_counter()
print(json.dumps({"parent_cpu_s": own.user + own.system, "workers_cpu_s": own.children_user + own.children_system,
  "inside_s": end - t0, "imports_s": t1 - t0, "features_s": t2 - t1, "fits_s": t3 - t2, "models": len(wf.results),
  "rows": m.model.rows, "balanced_accuracy": m.model.balanced_accuracy, "accuracy": m.model.accuracy,
  "roc_auc": m.model.roc_auc, "baseline_balanced_accuracy": m.baseline.balanced_accuracy,
  "majority_accuracy": m.baseline.accuracy}))
"""


def _tree(pid: int) -> list[int]:
    out, pending = [], [pid]
    while pending:
        current = pending.pop()
        out.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending.extend(int(c) for c in children)
    return out


def _kib(pid: int, field: str, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_once(model: Path, workers: int, source: Path | None = None) -> dict:
    env = dict(os.environ)
    env.pop("ML_BENCH_SRC", None)
    if source is not None:
        env["ML_BENCH_SRC"] = str(source)
    before = os.times()
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(model), str(DATA), START, END, str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    peak_pss = peak_rss = 0
    while process.poll() is None:
        pids = _tree(process.pid)
        peak_pss = max(peak_pss, sum(_kib(p, "Pss:", "smaps_rollup") for p in pids))
        peak_rss = max(peak_rss, *(_kib(p, "VmHWM:", "status") for p in pids))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    after = os.times()
    output, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"benchmark run failed (exit {process.returncode})")
    result = json.loads(output.strip().splitlines()[-1])
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {
        **result,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_pss_mib": peak_pss / 1024,
        "peak_rss_mib": peak_rss / 1024,
    }


def extract(revision: str, folder: Path) -> Path:
    """The engine and dsl packages as of ``revision`` (git archive), to time the code before a change
    in the same run, on the same machine load, as the code after it."""
    target = folder / f"src-{revision}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "engine", "dsl"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1, help="cold runs per configuration (median printed)")
    parser.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)), help="training processes"
    )
    parser.add_argument(
        "--max-bin", default="255,63,31", help="LightGBM max_bin values to run, comma-separated"
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also time the engine as of this git revision (before/after in the same run and load)",
    )
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"candles not found: {DATA}")
    load = os.getloadavg()[0]
    print(
        f"{args.runs} cold run(s) per configuration, {args.workers} worker process(es), "
        f"{os.cpu_count()} CPUs, load average {load:.1f} at start"
    )
    rows: list[tuple[str, list[dict]]] = []
    with tempfile.TemporaryDirectory() as folder:
        source = extract(args.baseline, Path(folder)) if args.baseline else None
        configs: list[tuple[str, int, Path | None]] = []
        for max_bin in [int(b) for b in args.max_bin.split(",")]:
            if source is not None:
                configs.append((f"{args.baseline[:7]} {max_bin}", max_bin, source))
            configs.append((f"ours {max_bin}", max_bin, None))
        runs: dict[str, list[dict]] = {label: [] for label, _, _ in configs}
        # Round-robin over the configurations, so a change of machine load hits them alike.
        for n in range(1, args.runs + 1):
            for label, max_bin, src in configs:
                model = Path(folder) / f"freqai_like_{max_bin}.yaml"
                model.write_text(MODEL.format(pairs=", ".join(PAIRS), max_bin=max_bin))
                r = run_once(model, args.workers, src)
                runs[label].append(r)
                print(
                    f"  {label} run {n}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, "
                    f"imports {r['imports_s']:.1f} s, features+labels {r['features_s']:.2f} s, "
                    f"{r['models']} fits {r['fits_s']:.1f} s, peak {r['peak_pss_mib']:.0f} MiB PSS, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        rows = [(label, runs[label]) for label, _, _ in configs]
    print(f"\n{'':34}{'FreqAI':>12}" + "".join(f"{label:>14}" for label, _ in rows))

    def line(label: str, theirs: str, value) -> None:
        print(f"{label:34}{theirs:>12}" + "".join(f"{value(runs):>14}" for _, runs in rows))

    med = statistics.median
    line(
        "whole process, wall (median)",
        f"{FREQAI['wall_s']:.1f} s",
        lambda r: f"{med(x['wall_s'] for x in r):.1f} s",
    )
    line(
        "  range",
        FREQAI["wall_range"] + " s",
        lambda r: f"{min(x['wall_s'] for x in r):.1f}-{max(x['wall_s'] for x in r):.1f} s",
    )
    line(
        "  features, labels and fits",
        f"{FREQAI['fit_s']:.1f} s",
        lambda r: f"{med(x['features_s'] + x['fits_s'] for x in r):.1f} s",
    )
    line("  CPU seconds, whole tree", "—", lambda r: f"{med(x['cpu_s'] for x in r):.1f} s")
    line("  of which worker processes", "—", lambda r: f"{med(x['workers_cpu_s'] for x in r):.1f} s")
    line(
        "  idle-machine estimate (*)",
        "—",
        lambda r: f"{med(x['parent_cpu_s'] + x['workers_cpu_s'] / args.workers for x in r):.1f} s",
    )
    line("peak memory", f"{FREQAI['peak_mib']} MiB", lambda r: f"{med(x['peak_pss_mib'] for x in r):.0f} MiB")
    line("  largest single process (RSS)", "—", lambda r: f"{med(x['peak_rss_mib'] for x in r):.0f} MiB")
    line("models", "140", lambda r: str(r[0]["models"]))
    line("out-of-sample predictions", f"{FREQAI['predictions']:,}", lambda r: f"{r[0]['rows']:,}")
    line(
        "balanced accuracy",
        f"{FREQAI['balanced_accuracy']:.3f}",
        lambda r: f"{r[0]['balanced_accuracy']:.3f}",
    )
    line("accuracy", f"{FREQAI['accuracy']:.3f}", lambda r: f"{r[0]['accuracy']:.3f}")
    line("ROC AUC", f"{FREQAI['roc_auc']:.3f}", lambda r: f"{r[0]['roc_auc']:.3f}")
    line(
        "majority class (balanced acc.)",
        f"{FREQAI['majority']:.3f}",
        lambda r: f"{r[0]['baseline_balanced_accuracy']:.3f}",
    )
    ours = [runs for label, runs in rows if label.startswith("ours")]
    best = min(med(x["wall_s"] for x in r) for r in ours)
    idle = min(med(x["parent_cpu_s"] + x["workers_cpu_s"] / args.workers for x in r) for r in ours)
    print(
        f"\nspeed-up over FreqAI (best configuration): {FREQAI['wall_s'] / best:.1f}x measured wall, "
        f"{FREQAI['wall_s'] / idle:.1f}x idle-machine estimate (goal: 5x, under 7.3 s)"
    )
    print(
        "(*) the main process's CPU seconds plus the workers' divided among the workers: the wall time if "
        "nothing else ran on the cores (on a shared machine the wall time above is inflated by the load)"
    )
    print("live per-candle cost: bench/ml_live.py; 1 year of candles: bench/ml_year.py")


if __name__ == "__main__":
    main()
