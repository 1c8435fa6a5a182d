"""ML bots in the live runtime: candle close -> order p99 and decision compute, without and during a
retrain, in one invocation (issue 13).

    .venv/bin/python bench/ml_runtime.py                 # 50 bots x 3 pairs, 20 1m candles, one every 2 s
    .venv/bin/python bench/ml_runtime.py --bots 100 --candles 40

bench/live.py's workspace (12 synthetic 1m pairs, bots running the EMA/RSI strategy) with a model
over the 12 pairs (the FreqAI-like features, one model across pairs, trained on the day before the
replay with `engine ml train` and promoted), and the bots' entry rule extended to read
``ml.bench_ml.p_buy`` (without changing which candles trade): every bot candle reads the production
model's prediction of the newest candle, computed live (engine/ml/live_rows.py). In the second run
`engine ml retrain` runs back to back in a child process for the whole run (what `engine run` starts
on a model's schedule), competing with the bots for the two cores. A first run without ML (the same
bots, the entry rule unchanged) is the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ENGINE = [str(Path(sys.executable).with_name("engine"))]
WARM_UP_S = 10.0  # --alternate: the first closes, before the first retrain, count for neither side

MODEL = """\
model: bench_ml
timeframe: 1m
pairs: [{pairs}]
features:
  rsi10: rsi(close, 10)
  rsi20: rsi(close, 20)
  mfi10: mfi(10)
  adx10: adx(10)
  close_sma20: close / sma(close, 20)
  close_ema10: close / ema(close, 10)
  roc10: roc(close, 10)
  change: close / close[1] - 1
  volume20: volume / sma(volume, 20)
  hour: hour()
label:
  type: direction
  horizon: 12
learner:
  type: lightgbm
windows:
  train: 8h
  step: 4h
"""


def _project(root: Path, replay_from: object, env: dict[str, str]) -> str:
    from live import PAIRS

    (root / "models").mkdir()
    model = root / "models" / "bench_ml.yaml"
    model.write_text(MODEL.format(pairs=", ".join(PAIRS)))
    strategy = root / "strategies" / "ema_rsi.yaml"
    text = re.sub(
        r"(\n  long: crosses_above\(fast_ma, slow_ma\) and momentum < rsi_max)",
        r"\1 and (ml.bench_ml.p_buy > 0.5 or close > 0)",
        strategy.read_text(),
    )
    strategy.write_text(text)
    to = str(replay_from)
    trained = subprocess.run(
        [*ENGINE, "ml", "train", str(model), "--data", str(root / "data"), "--to", to, "--workers", "2"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    found = re.search(r"version ([0-9a-f]{16})", trained.stdout)
    if trained.returncode != 0 or found is None:
        raise SystemExit(f"engine ml train failed:\n{trained.stdout[-1500:]}\n{trained.stderr[-1500:]}")
    version = found.group(1)
    promoted = subprocess.run(
        [*ENGINE, "ml", "promote", "bench_ml", version], cwd=root, env=env, capture_output=True, text=True
    )
    if promoted.returncode != 0:
        raise SystemExit(f"engine ml promote failed:\n{promoted.stdout}\n{promoted.stderr}")
    return version


def _retraining(
    root: Path, replay_from: object, env: dict[str, str], counts: list[int], split: dict | None = None
):
    """``split``: retrains alternate with pauses as long as the retrain took, and the bots' order
    latencies are timed (bench/live_sentiment.py's way), so closes during a retrain and closes
    without one come from the same run."""

    async def start(runtime, factory):  # type: ignore[no-untyped-def]
        from live_sentiment import _time_latencies

        stop = asyncio.Event()
        if split is not None:
            split["timed"] = _time_latencies(runtime)
            split["active"] = []

        async def loop() -> None:
            done = 0
            if split is not None:
                # The run's first closes pay one-off costs (windows, first predictions): they count for
                # neither side, and the first retrain starts after them.
                warm = time.perf_counter()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), WARM_UP_S)
                split["excluded"] = [(warm - 3600.0, time.perf_counter())]
            while not stop.is_set():
                begun = time.perf_counter()
                process = await asyncio.create_subprocess_exec(
                    *ENGINE,
                    "ml",
                    "retrain",
                    str(root / "models" / "bench_ml.yaml"),
                    "--data",
                    str(root / "data"),
                    "--to",
                    str(replay_from),
                    "--workers",
                    "1",  # as engine run starts it: one core stays with the bots
                    cwd=root,
                    env={**env, "ENGINE_ML_RETRAIN_CHILD": "1"},  # as engine run starts it
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                await process.wait()
                done += 1
                if split is not None:
                    took = time.perf_counter() - begun
                    split["active"].append((begun, time.perf_counter()))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), took)  # as long without a retrain
            counts.append(done)

        task = asyncio.create_task(loop())

        async def finish() -> None:
            stop.set()
            await task

        return finish

    return start


def main() -> None:
    from live import _bench, _workspace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=50)
    parser.add_argument("--candles", type=int, default=20)
    parser.add_argument(
        "--history", type=int, default=1800, help="1m candles before the replay (training data)"
    )
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="one run of ML bots, retrains alternating with pauses as long: closes during a retrain "
        "beside closes without one, in the same run",
    )
    args = parser.parse_args()
    results: dict[str, np.ndarray] = {}
    retrains: list[int] = []
    labels = ("bots without ML", "ML bots, no retrain", "ML bots, engine ml retrain running")
    split: dict = {}
    if args.alternate:
        labels = ("ML bots, engine ml retrain alternating",)
    for label in labels:
        root = Path(tempfile.mkdtemp(prefix="bench-ml-runtime-"))
        url = f"sqlite:///{root / 'engine.db'}"
        env = {**os.environ, "ENGINE_DATABASE_URL": url, "ENGINE_HOME": str(root / "var")}
        saved = {k: os.environ.get(k) for k in ("ENGINE_DATABASE_URL", "ENGINE_HOME")}
        os.environ.update(ENGINE_DATABASE_URL=url, ENGINE_HOME=str(root / "var"))
        try:
            from engine.store import upgrade

            replay_from = _workspace(root, args.bots, args.candles, args.history)
            upgrade(url)
            version = _project(root, replay_from, env) if label.startswith("ML") else "none"
            during = None
            if "retrain" in label:
                during = _retraining(
                    root, replay_from, env, retrains, split.setdefault(label, {}) if args.alternate else None
                )
            print(f"\n=== {label} (production version {version}) ===")
            results[label] = asyncio.run(
                _bench(root, replay_from, args.bots, interval=args.interval, gc_freeze=True, during=during)
            )
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            shutil.rmtree(root, ignore_errors=True)
    print("\ncandle close -> order intents committed and sent, bot candles that decided orders:")
    for label, orders in results.items():
        if len(orders):
            print(
                f"  {label:<36} n={len(orders):>4}  p50 {np.percentile(orders, 50):6.1f} ms  "
                f"p99 {np.percentile(orders, 99):6.1f} ms"
            )
    if retrains:
        print(f"  retrains completed during the retraining run: {retrains[0]}")
    if args.alternate:
        from live_sentiment import _split_by_rounds

        _split_by_rounds(split, "a retrain", "")
        return
    plain, ml, retraining = (results[k] for k in results)
    if len(plain) and len(ml) and len(retraining):
        print(
            f"  p99 moved by {np.percentile(ml, 99) - np.percentile(plain, 99):+.1f} ms with ML, and by "
            f"{np.percentile(retraining, 99) - np.percentile(ml, 99):+.1f} ms more during the retrain"
        )


if __name__ == "__main__":
    main()
