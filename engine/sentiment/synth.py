"""Generated news history for machines without network (the demo, the tests, the example strategy):
seeded and deterministic, stored with ``source = "generated"`` so reports say what it is.

Items arrive as a Poisson stream (``per_hour`` on average) whose mood drifts slowly (an AR(1) walk):
each item is a headline of the labelled set drawn from the bucket the mood favours, scored by the real
local scorer, known 5 to 20 minutes after publication. Now and then a hack or a delisting headline is
drawn, so the event series exist too. The observations have the same shape as ingested ones
(engine/sentiment/series.py); no news rows are written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.sentiment.evaluation import load_labelled
from engine.sentiment.events import detect_events
from engine.sentiment.scorer import CryptoScorer
from engine.sentiment.series import ALL

__all__ = ["GENERATED", "synth_news"]

GENERATED = "generated"
_HOUR = 3600 * NS_PER_SECOND


def _utc(value: str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def synth_news(
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    *,
    coin: str = "btc",
    per_hour: float = 1.5,
    event_share: float = 0.1,
    seed: int = 11,
) -> list[Observation]:
    """``news.<coin>.item``, ``news.all.item`` and ``events.<coin>.<type>`` between ``start`` and ``end``."""
    first, last = _utc(start), _utc(end)
    hours = int((last - first) / pd.Timedelta(hours=1))
    rng = np.random.default_rng([seed, 0])
    scorer = CryptoScorer()
    buckets: dict[str, list[tuple[str, float, tuple[str, ...]]]] = {
        "positive": [],
        "negative": [],
        "neutral": [],
    }
    for label, text in load_labelled():
        buckets[label].append((text, scorer.score(text).score, detect_events(text)))
    mood = 0.0
    out: list[Observation] = []
    base = int(first.value)
    for hour in range(hours):
        mood = 0.97 * mood + rng.normal(0, 0.12)
        for _ in range(rng.poisson(per_hour)):
            bias = float(np.tanh(mood))
            p_pos, p_neg = 0.3 + 0.3 * bias, 0.3 - 0.3 * bias
            label = rng.choice(["positive", "negative", "neutral"], p=[p_pos, p_neg, 1 - p_pos - p_neg])
            _, score, events = buckets[str(label)][rng.integers(len(buckets[str(label)]))]
            published = base + hour * _HOUR + int(rng.integers(0, _HOUR))
            available = published + int(rng.integers(5, 21)) * 60 * NS_PER_SECOND
            for key in (coin, ALL):
                out.append(Observation(f"news.{key}.item", published, available, float(score), GENERATED))
            # Most headlines of the set announce an event; real news about one coin rarely does.
            if rng.random() < event_share:
                out.extend(
                    Observation(f"events.{coin}.{kind}", published, available, 1.0, GENERATED)
                    for kind in events
                )
    return out


def store_generated_news(
    start: str, end: str, *, url: str | None = None, coin: str = "btc", seed: int = 11
) -> int:
    """Write :func:`synth_news` into the engine's store (``url`` or the default); returns rows added."""
    import asyncio

    from engine.feeds.store import write_observations
    from engine.store import create_engine_for, session_factory, upgrade_async

    async def run() -> int:
        engine = create_engine_for(url)
        try:
            await upgrade_async(engine)
            async with session_factory(engine)() as session, session.begin():
                return await write_observations(session, synth_news(start, end, coin=coin, seed=seed))
        finally:
            await engine.dispose()

    return asyncio.run(run())
