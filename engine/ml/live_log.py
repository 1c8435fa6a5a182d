"""Live predictions of the production model, stored as point-in-time observations and read back to
score them (engine/ml/tracking.py).

When a running bot's rules read ``ml.<model>.*`` for a candle that has just closed, the production
model's probabilities for it are stored under the same series as the walk-forward predictions
(``ml.<model>.<spec>.p_buy@<exchange>:<PAIR>``, engine/ml/pit.py), so a later backtest of that period
reads exactly what the bot saw, with the source ``ml-live:<model>:<version>`` and ``available_at`` the
moment it was computed. The writes go through a queue to a thread of their own: the candle loop only
appends to the queue, it never waits for the database.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.feeds.observations import Observation
from engine.ml.pit import STORED_MEMBERS, model_series

__all__ = ["LIVE_SOURCE", "PredictionLog", "flush_all", "live_observations", "read_live_predictions"]

log = logging.getLogger(__name__)
LIVE_SOURCE = "ml-live"
_LOGS: weakref.WeakSet[PredictionLog] = weakref.WeakSet()


def flush_all(timeout: float = 10.0) -> bool:
    """Wait for every prediction log of this process to write what it has queued (shutdown, tests)."""
    return all([entry.flush(timeout) for entry in list(_LOGS)])


def live_observations(
    name: str,
    spec_hash: str,
    version: str,
    exchange: str,
    pair: str,
    close_ns: int,
    proba: Sequence[float],
    known_at_ns: int,
) -> list[Observation]:
    """The observations of one live prediction (p_sell, p_hold, p_buy of the candle closing at
    ``close_ns``), known from ``known_at_ns``."""
    source = f"{LIVE_SOURCE}:{name}:{version}"
    return [
        Observation(
            model_series(name, spec_hash, member, exchange, pair),
            int(close_ns),
            max(int(known_at_ns), int(close_ns)),
            round(float(p), 7),
            source,
        )
        for member, p in zip(STORED_MEMBERS, proba, strict=True)
    ]


class PredictionLog:
    """A write-behind queue of live predictions to the store (``url``: the engine's database)."""

    def __init__(self, url: str | None = None):
        self.url = url
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._last: dict[tuple[str, str], int] = {}  # (series of p_buy, ...) -> newest close recorded
        self.written = 0
        self.error: str | None = None
        _LOGS.add(self)

    def record(self, observations: list[Observation]) -> None:
        """Queue one prediction's observations (a repeat of the newest one recorded is skipped)."""
        key = (observations[0].series, observations[0].source)
        if self._last.get(key) == observations[0].event_time:
            return
        self._last[key] = observations[0].event_time
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ml-prediction-log", daemon=True)
            self._thread.start()
            atexit.register(self.flush)
        self._queue.put(observations)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or ``timeout``); True when it was."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        from engine.feeds.store import write_observations
        from engine.store.db import run_with_session

        first = True
        while True:
            batch: list[Observation] = []
            markers: list[threading.Event] = []
            item = self._queue.get()
            while True:  # everything already queued goes in one transaction
                if isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.extend(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    work = lambda s, rows=batch: write_observations(s, rows)  # noqa: E731
                    self.written += asyncio.run(run_with_session(work, self.url, upgrade_first=first))
                    first, self.error = False, None
                except Exception as exc:  # the store is down: the predictions are lost, the bot goes on
                    if self.error is None:
                        log.warning("live ML predictions not stored: %s", exc)
                    self.error = str(exc)
            for marker in markers:
                marker.set()


async def read_live_predictions(
    session: Any, name: str, spec_hash: str, exchange: str, pairs: Iterable[str], version: str | None = None
) -> pd.DataFrame:
    """The stored live predictions of ``name`` (of one ``version``, or all): one row per pair and
    candle close, columns pair, close (ns), p_sell, p_hold, p_buy, version; sorted by close."""
    from sqlalchemy import select

    from engine.store.models import FeedObservation

    keys = {model_series(name, spec_hash, m, exchange, p): (p, m) for p in pairs for m in STORED_MEMBERS}
    source = FeedObservation.source
    statement = select(
        FeedObservation.series, FeedObservation.event_time, FeedObservation.value, source
    ).where(FeedObservation.series.in_(list(keys)))
    if version is None:
        statement = statement.where(source.like(f"{LIVE_SOURCE}:{name}:%"))
    else:
        statement = statement.where(source == f"{LIVE_SOURCE}:{name}:{version}")
    rows = (await session.execute(statement)).all()
    columns = ["pair", "close", *STORED_MEMBERS, "version"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        [(*keys[s], int(t), float(v), src.rsplit(":", 1)[1]) for s, t, v, src in rows],
        columns=["pair", "member", "close", "value", "version"],
    )
    wide = frame.pivot_table(
        index=["pair", "close", "version"], columns="member", values="value", aggfunc="last"
    ).reset_index()
    for member in STORED_MEMBERS:
        if member not in wide:
            wide[member] = np.nan
    # A value equal to one already stored for that candle (a walk-forward prediction) is not stored
    # twice: when one class is missing, it is what the other two leave.
    p = wide[list(STORED_MEMBERS)].to_numpy(np.float64, copy=True)
    one = np.isnan(p).sum(axis=1) == 1
    for j in range(len(STORED_MEMBERS)):
        fill = one & np.isnan(p[:, j])
        p[fill, j] = np.clip(1.0 - np.nansum(p[fill], axis=1), 0.0, 1.0)
    wide[list(STORED_MEMBERS)] = p
    return wide[columns].sort_values(["close", "pair"], kind="stable").reset_index(drop=True)
