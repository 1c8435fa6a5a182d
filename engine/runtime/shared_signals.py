"""Signals computed once per strategy, pair and candle, for every bot that would compute the same.

Bots running the same strategy with the same inputs on the same pair hold the same candle window (one
feed fills them all; the window is the last ``capacity`` candles) and so get the same signals. The
first bot to reach a candle computes them; the others append the candle to their own window and take
the result. The key includes how many candles the window holds (capped at its capacity), which is
what decides both its contents and whether the strategy is warm yet.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from engine.config import LoadedStrategy
from engine.trading.trader import Candle, Signals

__all__ = ["SharedSignals", "strategy_key"]


def strategy_key(strategy: LoadedStrategy) -> str:
    inputs = json.dumps({k: str(v) for k, v in sorted(strategy.inputs.items())})
    return hashlib.sha256(f"{strategy.text}\x1f{inputs}".encode()).hexdigest()


@dataclass
class SharedSignals:
    # (strategy key, pair) -> (candle open time, window length, candle, signals): the latest only
    latest: dict[tuple[str, str], tuple[int, int, Candle, Signals]] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    def get(self, key: str, pair: str, time: int, length: int) -> tuple[Candle, Signals] | None:
        found = self.latest.get((key, pair))
        if found is not None and found[0] == time and found[1] == length:
            self.hits += 1
            return found[2], found[3]
        self.misses += 1
        return None

    def put(self, key: str, pair: str, time: int, length: int, candle: Candle, signals: Signals) -> None:
        self.latest[(key, pair)] = (time, length, candle, signals)
