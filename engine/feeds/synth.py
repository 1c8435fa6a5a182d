"""Generated feed history for machines without network (the demo and the tests): seeded, deterministic,
stored with ``source = "generated"`` so ``engine feeds status`` and reports say what it is.

Each series keeps its real service's timing, so the point-in-time rules are exercised as they would be:
Fear & Greed once a day at 00:00 UTC (known 10 minutes later), BTC dominance hourly (known at the hour's
end), the S&P 500 on weekdays (a bar stamped at the 14:30 UTC open, known at the 21:00 UTC close).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.feeds.observations import NS_PER_SECOND, Observation

__all__ = ["GENERATED", "synth_feeds"]

GENERATED = "generated"
_MIN = 60 * NS_PER_SECOND


def _ar1(
    rng: np.random.Generator, count: int, mean: float, phi: float, scale: float, start: float
) -> np.ndarray:
    out = np.empty(count)
    value = start
    for i in range(count):
        value = mean + phi * (value - mean) + rng.normal(0, scale)
        out[i] = value
    return out


def synth_feeds(start: str | pd.Timestamp, end: str | pd.Timestamp, *, seed: int = 7) -> list[Observation]:
    """fear_greed.value, btc.dominance and spx.close between ``start`` and ``end`` (UTC)."""
    first = pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tzinfo is None else pd.Timestamp(start)
    last = pd.Timestamp(end, tz="UTC") if pd.Timestamp(end).tzinfo is None else pd.Timestamp(end)
    # One stream per series, so a longer range starts with exactly the values of a shorter one.
    streams = [np.random.default_rng([seed, i]) for i in range(3)]
    out: list[Observation] = []

    days = pd.date_range(first.floor("D"), last, freq="D")
    mood = np.clip(np.round(_ar1(streams[0], len(days), 50, 0.93, 7.0, 45)), 5, 95)
    for day, value in zip(days.as_unit("ns").asi8, mood, strict=True):
        out.append(Observation("fear_greed.value", int(day), int(day) + 10 * _MIN, float(value), GENERATED))

    hours = pd.date_range(first.floor("h"), last, freq="h")
    dominance = np.clip(52 + np.cumsum(streams[1].normal(0, 0.08, len(hours))), 38, 68)
    for hour, value in zip(hours.as_unit("ns").asi8, dominance, strict=True):
        out.append(
            Observation("btc.dominance", int(hour), int(hour) + 60 * _MIN, round(float(value), 3), GENERATED)
        )

    sessions = [d for d in days if d.weekday() < 5]
    closes = 4700 * np.exp(np.cumsum(streams[2].normal(0.0003, 0.011, len(sessions))))
    for day, value in zip(sessions, closes, strict=True):
        open_ns = int((day + pd.Timedelta(hours=14, minutes=30)).value)
        close_ns = int((day + pd.Timedelta(hours=21)).value)
        out.append(Observation("spx.close", open_ns, close_ns, round(float(value), 2), GENERATED))
    return out


def store_generated_feeds(start: str, end: str, *, url: str | None = None, seed: int = 7) -> tuple[int, int]:
    """Write :func:`synth_feeds` to the engine's store; returns (observations, new rows). Idempotent."""
    import asyncio

    from engine.feeds.store import write_observations
    from engine.store.db import run_with_session

    observations = synth_feeds(start, end, seed=seed)

    async def write(session) -> int:
        return await write_observations(session, observations)

    return len(observations), asyncio.run(run_with_session(write, url))
