"""Fast exits on the trade stream against exits at candle closes, on generated pump-and-dump episodes.

    .venv/bin/python bench/fast_exit.py                  # 4 episodes per kind (a minute or two)
    .venv/bin/python bench/fast_exit.py --episodes 20 --interval 5

A bot running ``strategies/pump_guard.yaml`` (``fast_exit: long: dump_risk().score > 3``, 5m candles)
holds a long position from the pump's first candle. Each episode is
``engine.indicators.synthetic.pump_and_dump`` with a public trade every second inside the candles from
the pump's start on (a Brownian bridge from each candle's open to its close; the candle's high, low
and volume are then the trades'), so both paths see exactly the same candles.

* **candle closes only** (a replay, a backtest, or a live bot without a trade stream): the rule is
  evaluated at each close; a live bot leaves at that close, a backtest at the next open (the same
  moment, no better than the signal candle's low).
* **trade stream**: the engine's own :class:`~engine.runtime.fast_exit.FastExitGuard` and
  ``LiveSignals.forming_fast_exit`` on the forming candle, evaluated at most once per ``--interval``
  seconds of trade time (the runtime's default: 1 s), the close path as well at each close.

Printed per kind: the median / 90th percentile of seconds from the dump's first trade to the exit
(exits before it, by the fade score during the top, are counted apart), and the mean price change
from the dump's first trade to the exit; then the
cost of one forming-candle evaluation and the reference points of ../shared/INTELLIGENCE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
STEP_S = 300
SIGMA = 0.002  # pump_and_dump's volatility per candle
PAIR = "PUMP/BTC"

# (label, rise range, candles of the rise, volume burst range): as bench/pump.py
KINDS = [
    ("gentle: +3-8% over 6-12 candles, x2-4 volume", (0.03, 0.08), (6, 12), (2.0, 4.0)),
    ("typical: +8-20% over 3-6 candles, x4-10", (0.08, 0.20), (3, 6), (4.0, 10.0)),
    ("violent: +20-50% over 1-3 candles, x10-30", (0.20, 0.50), (1, 3), (10.0, 30.0)),
]


def _trades(candles: pd.DataFrame, first: int, rng: np.random.Generator):
    """One trade a second inside every candle from ``first`` on: (candles rebuilt from them, per candle
    the trades as engine Trade tuples)."""
    from engine.feeds.sources.trades import Trade

    candles = candles.copy()
    per_candle = []
    t = np.arange(1, STEP_S + 1) / STEP_S
    for i in range(first, len(candles)):
        o, c, v = candles["open"].iloc[i], candles["close"].iloc[i], candles["volume"].iloc[i]
        walk = np.cumsum(rng.normal(0.0, 1.0, STEP_S))
        bridge = walk - t * walk[-1]  # 0 at both ends
        # The walk's own volatility (0.2% a candle) spread over the candle's seconds.
        path = o + (c - o) * t + bridge * abs(o) * SIGMA / np.sqrt(STEP_S)
        path[-1] = c
        open_ms = int(candles.index[i].value // 1_000_000)
        amount = v / STEP_S
        sides = np.where(np.diff(path, prepend=o) < 0, "sell", "buy")
        per_candle.append(
            [Trade(open_ms + 1000 * k, sides[k], amount, float(path[k]), str(k)) for k in range(STEP_S)]
        )
        candles.iloc[i, candles.columns.get_indexer(["high", "low"])] = (
            max(o, path.max()),
            min(o, path.min()),
        )
    return candles, per_candle


class _Runner:
    """What a FastExitGuard reads of a bot: its windows, its position, its strategy; the exit is noted."""

    def __init__(self, strategy) -> None:
        from engine.strategy.live import LiveSignals

        self.signals = LiveSignals(strategy)
        self.step_ns = STEP_S * 1_000_000_000
        self.loaded = SimpleNamespace(strategy=strategy)
        self.holding = True
        from engine.trading import layout as L

        # No exit decided on a close is ever pending here: pos_i stays zero.
        state = SimpleNamespace(pairs=(PAIR,), pos_i=np.zeros((1, L.N_POS_I), dtype=np.int64))
        self.trader = SimpleNamespace(held_side=lambda pair: 1 if self.holding else 0, state=state)
        self.exit_ns: int | None = None
        self.exit_price = float("nan")

    async def fast_exit(self, pair, side, candle, time_ns) -> bool:
        self.holding, self.exit_ns, self.exit_price = False, time_ns, candle.close
        return True


async def _stream_exit(
    strategy, candles, trades, first: int, interval: float
) -> tuple[float, float, int, float]:
    """(exit ns, exit price, evaluations, seconds spent evaluating) following the trade stream."""
    from engine.runtime.fast_exit import FastExitGuard

    runner = _Runner(strategy)
    runner.signals.seed(PAIR, candles.iloc[:first])
    guard = FastExitGuard(runner, interval=interval)
    spent = 0.0
    for i, batch in enumerate(trades):
        row = candles.iloc[first + i]
        for trade in batch:
            guard.take(PAIR, [trade])
            began = time.perf_counter()
            if await guard.check(PAIR, trade.time_ms):
                spent += time.perf_counter() - began
                return runner.exit_ns, runner.exit_price, guard.evaluations, spent
            spent += time.perf_counter() - began
        # The close: the ordinary path evaluates the closed candle too.
        _, signals = runner.signals.on_candle(
            PAIR, int(row.name.value), row["open"], row["high"], row["low"], row["close"], row["volume"]
        )
        if signals.fast_exit_long:
            return int(row.name.value) + runner.step_ns, float(row["close"]), guard.evaluations, spent
    return -1, float("nan"), guard.evaluations, spent


def main() -> None:
    from engine.config import load_strategy
    from engine.indicators.synthetic import pump_and_dump
    from engine.strategy import compute_signals

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=4, help="episodes per kind")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between evaluations of a pair")
    parser.add_argument("--rule", help="another fast_exit long: rule (default: pump_guard's own)")
    parser.add_argument(
        "--hours", type=float, default=2.0, help="how long after the pump a bot may still leave"
    )
    args = parser.parse_args()
    strategy = load_strategy(ROOT / "strategies" / "pump_guard.yaml")
    rule = "dump_risk().score > 3"
    if args.rule:
        rule = args.rule
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rule.yaml"
            path.write_text(
                f"strategy: rule\ntimeframe: 5m\nentry:\n  long: close < 0\nfast_exit:\n  long: {rule}\n"
            )
            strategy = load_strategy(path)
    after = int(args.hours * 3600 / STEP_S)
    print(f"fast_exit long: {rule} on 5m candles; a trade a second;")
    print(
        f"trade-stream evaluations at most every {args.interval:g} s; seconds from the dump's first trade\n"
    )
    print(
        "   before: left before the dump began (in the pump or at the top); med/p90: seconds after its first trade; then the mean price"
    )
    print("   change from that first trade to the exit (what leaving cost or saved)\n")
    print(f"   {'kind':46s} {'candle closes only':>38s} | {'trade stream':>38s}")
    evaluations, spent = 0, 0.0
    for label, rise, span, burst in KINDS:
        closes, streams, gave_close, gave_stream = [], [], [], []
        for seed in range(args.episodes):
            rng = np.random.default_rng(seed)
            episode = pump_and_dump(
                1000,
                700,
                rng,
                rise=rng.uniform(*rise),
                rise_candles=int(rng.integers(span[0], span[1] + 1)),
                burst=rng.uniform(*burst),
                fall=rng.uniform(0.1, 0.3),
            )
            first = episode.pump_start
            base = episode.candles.iloc[: first + after].copy()
            base.index = pd.date_range("2024-01-01", periods=len(base), freq="5min", tz="UTC", name="date")
            candles, trades = _trades(base, first, rng)
            dump_ns = int(candles.index[episode.dump_start].value)
            dump_price = float(candles["open"].iloc[episode.dump_start])
            flags = compute_signals(strategy, candles)["fast_exit_long"].to_numpy()
            hits = np.flatnonzero(flags[first:])
            if len(hits):
                k = first + int(hits[0])
                closes.append((int(candles.index[k].value) + STEP_S * 10**9 - dump_ns) / 1e9)
                gave_close.append(float(candles["close"].iloc[k]) / dump_price - 1)
            else:
                closes.append(np.nan)
            exit_ns, price, n, cost = asyncio.run(
                _stream_exit(strategy, candles, trades, first, args.interval)
            )
            evaluations, spent = evaluations + n, spent + cost
            streams.append((exit_ns - dump_ns) / 1e9 if exit_ns >= 0 else np.nan)
            if exit_ns >= 0:
                gave_stream.append(price / dump_price - 1)
        print(f"   {label:46s} {_describe(closes, gave_close)} | {_describe(streams, gave_stream)}")
    if evaluations:
        print(
            f"\n   one forming-candle evaluation: {spent / evaluations * 1000:.1f} ms mean ({evaluations} made)"
        )
    print("\nreference points (../shared/INTELLIGENCE.md): pumps flagged from candles after ~30 minutes")
    print(
        "(Kamps & Kleinberg 2018), from bursts of market buys in the trade stream after ~25 seconds (La Morgia"
    )
    print("et al. 2020). Those time the pump's detection; this times leaving once the dump has begun.")


def _describe(seconds: list[float], gave: list[float]) -> str:
    """Exits before the dump's first trade (the fade score during the top), then the delay of the others."""
    d = np.asarray(seconds, dtype=float)
    found = np.isfinite(d)
    early = found & (d < 0)
    late = d[found & (d >= 0)]
    loss = f"{np.mean(gave):+.1%}" if gave else "  n/a"
    delay = f"med {np.median(late):5.0f} s p90 {np.percentile(late, 90):5.0f} s" if len(late) else f"{'':23s}"
    return f"before {early.mean():4.0%} {delay} {loss:>6s}"


if __name__ == "__main__":
    main()
