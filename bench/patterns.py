"""Chart patterns: detection rate on generated shapes, false positives on noise, hits on real candles, speed.

    .venv/bin/python bench/patterns.py                 # 50 seeds per shape, 100,000 noise candles
    .venv/bin/python bench/patterns.py --seeds 200 --noise 0.3

Printed per function, side by side:
- ``found``: share of generated drawings (``engine.indicators.synthetic.SHAPES``, candle noise
  ``--noise`` around a path of height ~10) on which it fires within 3 candles before / 6 after the
  candle where the noiseless drawing breaks out;
- ``fp/10k``: signals per 10,000 candles of a driftless random walk (0.2% per candle). A random walk
  holds chance patterns, so this is the rate at which the rule sees a pattern in noise, the figure to
  hold against a trader's eye, not a bug count;
- ``real/10k``: signals per 10,000 candles over every 5m file in ../shared/data/binance (2018);
- ``ms/10k``: time to compute one function over 10,000 candles (from the 100,000-candle run).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "binance"


def _detect(name: str, candles: pd.DataFrame, **args) -> dict[str, np.ndarray]:
    from engine.indicators import default_registry

    spec = default_registry().lookup(name)
    kwargs = {p.name: p.default for p in spec.params if p.name not in ("high", "low", "close")}
    kwargs.update(args)
    return spec.impl(**kwargs, **{c: candles[c].to_numpy() for c in ("high", "low", "close")})


def main() -> None:
    from engine.indicators.synthetic import SHAPES, random_walk, shape

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--noise", type=float, default=0.15)
    parser.add_argument("--candles", type=int, default=100_000)
    args = parser.parse_args()

    walk = random_walk(args.candles, np.random.default_rng(7))
    real = [pd.read_csv(f, parse_dates=["date"], index_col="date") for f in sorted(DATA.glob("*-5m.csv"))]
    real_candles = sum(len(r) for r in real)
    print(f"{'function':24s} {'found':>6s} {'fp/10k':>7s} {'real/10k':>8s} {'ms/10k':>7s}")
    for bull, (bear, drawing) in SHAPES.items():
        for name, mirrored in ((bull, False), (bear, True)):
            extra = {"direction": "down"} if name == "symmetric_triangle" and mirrored else {}
            found = 0
            for seed in range(args.seeds):
                candles, expected = shape(
                    drawing, np.random.default_rng(seed), noise=args.noise, mirrored=mirrored
                )
                fired = np.flatnonzero(_detect(name, candles, **extra)["signal"])
                found += bool(((fired >= expected - 3) & (fired <= expected + 6)).any())
            started = time.perf_counter()
            noise_hits = _detect(name, walk, **extra)["signal"].sum()
            elapsed = time.perf_counter() - started
            real_hits = sum(_detect(name, r, **extra)["signal"].sum() for r in real)
            label = name + (" (down)" if extra else "")
            print(
                f"{label:24s} {found / args.seeds:6.0%} {noise_hits * 1e4 / len(walk):7.1f} "
                f"{real_hits * 1e4 / real_candles:8.1f} {elapsed * 1e3 * 1e4 / len(walk):7.1f}"
            )


if __name__ == "__main__":
    main()
