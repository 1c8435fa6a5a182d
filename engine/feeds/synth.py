"""Generated feed history for machines without network (the demo and the tests): seeded, deterministic,
stored with ``source = "generated"`` so ``engine feeds status`` and reports say what it is.

Each series keeps its real service's timing, so the point-in-time rules are exercised as they would be:
Fear & Greed once a day at 00:00 UTC (known 10 minutes later), BTC dominance hourly (known at the hour's
end), the S&P 500 on weekdays (a bar stamped at the 14:30 UTC open, known at the 21:00 UTC close);
per pair, Binance futures positioning in 5-minute periods (stamped at the period's start, known at its
end plus a minute) and funding rates every 8 hours (known a minute after the funding time).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.feeds.observations import NS_PER_SECOND, Observation

__all__ = ["GENERATED", "POSITIONING_MEMBERS", "synth_feeds", "synth_positioning"]

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


POSITIONING_MEMBERS = (
    "top_position_ratio",
    "top_account_ratio",
    "global_account_ratio",
    "taker_buy_sell_ratio",
    "open_interest",
    "open_interest_value",
)


def _utc(value: str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def synth_positioning(
    scope: str,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    *,
    positioning: str | None = "pos",
    funding: str | None = "funding",
    seed: int = 11,
) -> list[Observation]:
    """Futures positioning (feed ``positioning``: the six members, 5-minute periods) and funding rates
    (feed ``funding``: ``rate`` at 00:00, 08:00 and 16:00 UTC) of one ``exchange:PAIR`` scope.

    Long/short ratios wander around 1 (mean-reverting in log), so the top traders turn net long and
    net short several times a day and ``consensus_shift`` has crossings to find; the crowd's ratio
    moves on its own. A period stamped ``t`` is known at ``t + 5m + 1m`` (Binance publishes a period
    when it ends), a funding rate a minute after its funding time."""
    import zlib

    first, last = _utc(start), _utc(end)
    base = zlib.crc32(scope.encode())
    rng = [np.random.default_rng([seed, base, i]) for i in range(7)]
    out: list[Observation] = []
    if positioning is not None:
        periods = pd.date_range(first.floor("5min"), last, freq="5min").as_unit("ns").asi8
        n = len(periods)
        series = {
            "top_position_ratio": np.exp(_ar1(rng[0], n, 0.0, 0.995, 0.025, 0.0)),
            "top_account_ratio": np.exp(_ar1(rng[1], n, 0.35, 0.995, 0.02, 0.35)),
            "global_account_ratio": np.exp(_ar1(rng[2], n, 0.1, 0.997, 0.015, -0.1)),
            "taker_buy_sell_ratio": np.exp(_ar1(rng[3], n, 0.0, 0.6, 0.12, 0.0)),
        }
        contracts = 2.0e8 * np.exp(np.cumsum(rng[4].normal(0, 0.002, n)))
        price = 1.0 * np.exp(np.cumsum(rng[5].normal(0, 0.002, n)))
        series["open_interest"] = contracts
        series["open_interest_value"] = contracts * price
        known = periods + 6 * _MIN  # the period's end plus a minute
        for member, values in series.items():
            key = f"{positioning}.{member}@{scope}"
            digits = 4 if member.endswith("ratio") else 2
            out.extend(
                Observation(key, int(t), int(k), round(float(v), digits), GENERATED)
                for t, k, v in zip(periods, known, values, strict=True)
            )
    if funding is not None:
        times = pd.date_range(first.floor("D"), last, freq="8h").as_unit("ns").asi8
        rates = _ar1(rng[6], len(times), 0.0001, 0.8, 0.00008, 0.0001)
        out.extend(
            Observation(f"{funding}.rate@{scope}", int(t), int(t) + _MIN, round(float(r), 8), GENERATED)
            for t, r in zip(times, rates, strict=True)
        )
    return out


def store_generated_feeds(
    start: str,
    end: str,
    *,
    url: str | None = None,
    seed: int = 7,
    positioning: list[tuple[str, str | None, str | None]] = (),  # type: ignore[assignment]
) -> tuple[int, int]:
    """Write :func:`synth_feeds` (and :func:`synth_positioning` for each ``(scope, positioning feed name,
    funding feed name)``) to the engine's store; returns (observations, new rows). Idempotent."""
    import asyncio

    from engine.feeds.store import write_observations
    from engine.store.db import run_with_session

    observations = synth_feeds(start, end, seed=seed)
    for scope, pos_name, funding_name in positioning:
        observations += synth_positioning(scope, start, end, positioning=pos_name, funding=funding_name)

    async def write(session) -> int:
        return await write_observations(session, observations)

    return len(observations), asyncio.run(run_with_session(write, url))
