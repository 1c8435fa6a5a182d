"""The production model's predictions of a pair's newest candles, computed once each.

Live (and in a replay), rules are evaluated over the strategy's window at every close: each call
sees the same candles as the last one plus a new one. Here the probabilities already computed are
kept by candle open time, and only new rows are predicted; their features come from a
:class:`~engine.ml.incremental.Streamer` stepped one candle at a time (one step per plan node,
~25 us for the benchmark's 16 features, against ~1.3 ms for the plan over the window). When the
new rows are not the candles right after the last one streamed (the first call, a gap, a jump in a
replay), or the plan has a node without a step, the features of the window are computed by the
batch path as before and the streamer restarts from that window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.ml.features import feature_matrix
from engine.ml.incremental import Streamer, streamer

__all__ = ["LiveRows"]

_CANDLE = ("open", "high", "low", "close", "volume")
# A streamer starts from the window only when the window is live-sized: feeding a backtest's whole
# history one candle at a time would cost more than the batch path it replaces.
_STREAM_START_MAX = 4096


class LiveRows:
    """One model, pair and production version: probabilities by open time, and the feature stream."""

    def __init__(self, version: str):
        self.version = version
        # Probabilities already computed: open times (ascending) and their rows.
        self._times = np.empty(0, dtype=np.int64)
        self._proba = np.empty((0, 3), dtype=np.float32)
        self.stream: Streamer | None = None
        self.streamable = True  # False once the plan turned out to have a node without a step
        self.batch_rows = 0  # rows whose features came from the batch path (for tests and benches)
        self.streamed_rows = 0

    def predict(
        self,
        loaded: Any,
        fitted: Any,
        candles: pd.DataFrame,
        opens: np.ndarray,
        rows: np.ndarray,
        context: Any,
    ) -> np.ndarray:
        """``(len(rows), 3)`` probabilities of ``candles``' rows ``rows`` (ascending indexes)."""
        out = np.empty((len(rows), 3), dtype=np.float32)
        wanted = opens[rows]
        at = np.searchsorted(self._times, wanted)
        hit = at < len(self._times)
        hit[hit] = self._times[at[hit]] == wanted[hit]
        out[hit] = self._proba[at[hit]]
        if not hit.all():
            new = rows[~hit]
            x = self._streamed(candles, opens, new)
            if x is None:
                x = self._batch(loaded, candles, opens, new, context)
            proba = fitted.predict_proba(x)
            out[~hit] = proba
            # Keep what is still in the window, in time order (new rows usually come after the rest).
            drop = int(np.searchsorted(self._times, opens[0]))
            times = np.concatenate((self._times[drop:], opens[new]))
            kept = np.concatenate((self._proba[drop:], proba))
            if len(times) > 1 and not (times[1:] > times[:-1]).all():
                order = np.argsort(times, kind="stable")
                times, kept = times[order], kept[order]
            self._times, self._proba = times, kept
        return out

    def _streamed(self, candles: pd.DataFrame, opens: np.ndarray, new: np.ndarray) -> np.ndarray | None:
        """Features of ``new`` by stepping the stream, when they are the candles right after it."""
        stream = self.stream
        if stream is None or stream.last_open is None or stream.broken:
            return None
        start, stop = int(new[0]), int(new[-1]) + 1
        if start == 0 or int(opens[start - 1]) != stream.last_open or stop - start != len(new):
            return None
        rows = stream.feed(_candle_columns(candles, start, stop), opens[start:stop])
        if rows is None:
            self.stream = None
            return None
        self.streamed_rows += len(rows)
        return rows

    def _batch(
        self, loaded: Any, candles: pd.DataFrame, opens: np.ndarray, new: np.ndarray, context: Any
    ) -> np.ndarray:
        x = feature_matrix(loaded.plan, loaded.feature_names, candles, context)
        self.batch_rows += len(new)
        self.stream = None
        if self.streamable and len(candles) <= _STREAM_START_MAX:
            fresh = streamer(loaded.plan, loaded.feature_names)
            if fresh is None:
                self.streamable = False
            elif fresh.feed(_candle_columns(candles, 0, len(candles)), opens) is not None:
                self.stream = fresh
        return x[new]


def _candle_columns(candles: pd.DataFrame, start: int, stop: int) -> dict[str, np.ndarray]:
    """Rows ``start:stop`` of the OHLCV columns. One block read when the frame is all numbers (~2 us):
    a pandas column access costs ~10 us, five of them more than the streamed step itself."""
    names = list(candles.columns)
    try:
        block = candles.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        return {c: candles[c].to_numpy(dtype=np.float64)[start:stop] for c in _CANDLE}
    return {c: block[start:stop, names.index(c)] for c in _CANDLE}
