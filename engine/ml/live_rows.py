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
        self._span = 0
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
            # In time order (new rows usually come after the rest); the newest rows of the longest
            # window any caller asked about are kept (bots with different windows share this).
            self._span = max(self._span, len(opens))
            times = np.concatenate((self._times, opens[new]))
            kept = np.concatenate((self._proba, proba))
            if len(times) > 1 and not (times[1:] > times[:-1]).all():
                order = np.argsort(times, kind="stable")
                times, kept = times[order], kept[order]
            if len(times) > 2 * self._span:
                times, kept = times[-self._span :], kept[-self._span :]
            self._times, self._proba = times, kept
        return out

    def _streamed(self, candles: pd.DataFrame, opens: np.ndarray, new: np.ndarray) -> np.ndarray | None:
        """Features of ``new`` (consecutive rows) by stepping the stream, when the window holds the
        stream's last candle before them: candles in between (closes nobody asked about, say while
        stored predictions covered them) are stepped through too."""
        stream = self.stream
        if stream is None or stream.last_open is None or stream.broken:
            return None
        start, stop = int(new[0]), int(new[-1]) + 1
        if stop - start != len(new):
            return None
        k = int(np.searchsorted(opens, stream.last_open))
        if k >= start or int(opens[k]) != stream.last_open:
            return None
        rows = stream.feed(_candle_columns(candles, k + 1, stop), opens[k + 1 : stop])
        if rows is None:
            self.stream = None
            return None
        self.streamed_rows += len(new)
        return rows[start - k - 1 :]

    def _batch(
        self, loaded: Any, candles: pd.DataFrame, opens: np.ndarray, new: np.ndarray, context: Any
    ) -> np.ndarray:
        x = feature_matrix(loaded.plan, loaded.feature_names, candles, context)
        self.batch_rows += len(new)
        self._catch_up(loaded, candles, opens)
        return x[new]

    def _catch_up(self, loaded: Any, candles: pd.DataFrame, opens: np.ndarray) -> None:
        """Bring the stream to the window's newest candle: on from its last candle when the window
        holds it (another caller asked about older rows), else restarted from the window."""
        stream = self.stream
        if stream is not None and not stream.broken and stream.last_open is not None:
            if stream.last_open == int(opens[-1]):
                return
            k = int(np.searchsorted(opens, stream.last_open))
            held = k < len(opens) and int(opens[k]) == stream.last_open
            if held and stream.feed(_candle_columns(candles, k + 1, len(opens)), opens[k + 1 :]) is not None:
                return
        self.stream = None
        if self.streamable and len(candles) <= _STREAM_START_MAX:
            fresh = streamer(loaded.plan, loaded.feature_names)
            if fresh is None:
                self.streamable = False
            elif fresh.feed(_candle_columns(candles, 0, len(candles)), opens) is not None:
                self.stream = fresh


def _candle_columns(candles: pd.DataFrame, start: int, stop: int) -> dict[str, np.ndarray]:
    """Rows ``start:stop`` of the OHLCV columns. One block read when the frame is all numbers (~2 us):
    a pandas column access costs ~10 us, five of them more than the streamed step itself."""
    names = list(candles.columns)
    try:
        block = candles.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        return {c: candles[c].to_numpy(dtype=np.float64)[start:stop] for c in _CANDLE}
    return {c: block[start:stop, names.index(c)] for c in _CANDLE}
