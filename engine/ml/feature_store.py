"""The feature store: feature matrices kept on disk between training runs and extended by new candles.

A matrix is keyed by the hash of its features' compiled expressions (``rsi(close,14)`` and
``rsi(close, 14)`` are one key; another window is another key), the pair, the timeframe and the candle
source. A run then reads the stored rows and computes only the candles after the stored end.

Why that is exact, and when it is not done:

- DSL features are causal: the value at a candle depends on candles up to it only, so appending
  candles never changes stored rows.
- But recursive indicators (EMA, Wilder's RSI/ADX/ATR, anything ``@1h``) depend on where the data
  *starts*: an EMA started 300 candles back is not the EMA started at the first candle. New rows are
  therefore computed from a look-back of ``4 x warm-up`` candles, and the rows of that look-back that
  are already stored are compared with the fresh ones: only when they agree (NaN where NaN, values
  within :data:`RTOL`) are the new rows appended. Otherwise the look-back grows fourfold, up to the
  whole history (which is the from-scratch computation itself). A function that never forgets its
  start (a cumulative sum such as ``obv``) thus falls back to a full computation instead of storing
  wrong values. The start's effect only decays after the compared rows, so the new rows are closer.
- Why a tolerance and not bit equality: TA-Lib's sliding sums (MFI, SMA-type windows) add the new
  candle and subtract the old one, so their float64 rounding depends on how many candles were summed
  before: MFI from another start gives 6.6e-14 where the full history gives 0.0. Stored values are
  float32 (relative resolution 6e-8), so such noise flips at most the last bit or two of a value.
  :data:`RTOL` (1e-6, ~16 float32 steps) plus an absolute 1e-9 of the column's magnitude (for values
  that cross zero) accepts that noise and refuses any real transient (an EMA started 100 candles
  late is off by ~1e-4).
- Every stored row keeps a hash of its candle. A candle changed before the stored end (a correction,
  a re-fetch), other candles at the start, or a damaged file: everything is computed again (a damaged
  file with a warning), never read.
- Features reading feeds (external series) are not stored: their data is not in the candles.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dsl import Plan
from dsl.timeframes import timeframe_seconds
from engine.ml.artifacts import pair_key
from engine.ml.feature_files import Stored, StoredFileError, candle_hashes, read_stored, write_stored
from engine.ml.features import feature_matrix
from engine.ml.identity import FORMAT

__all__ = ["FeatureResult", "FeatureStore", "agree", "default_features_root", "feature_key"]

log = logging.getLogger(__name__)

STORE_FORMAT = 1  # bump when the file layout or the way values are computed changes
RTOL = 1e-6
ATOL_SCALE = 1e-9


def agree(fresh: np.ndarray, stored: np.ndarray) -> bool:
    """Whether two computations of the same rows agree: the same NaNs, values within :data:`RTOL` of
    each other plus :data:`ATOL_SCALE` of the column's largest magnitude."""
    if fresh.shape != stored.shape:
        return False
    missing = np.isnan(stored)
    if not np.array_equal(np.isnan(fresh), missing):
        return False
    a = np.where(missing, 0.0, fresh).astype(np.float64)
    b = np.where(missing, 0.0, stored).astype(np.float64)
    scale = np.abs(b).max(axis=0, initial=0.0) if len(b) else 0.0
    return bool((np.abs(a - b) <= RTOL * np.abs(b) + ATOL_SCALE * scale).all())


def default_features_root() -> Path:
    """``$ENGINE_HOME/features`` (beside ``models/``), else ``var/features``."""
    return Path(os.environ.get("ENGINE_HOME") or "var") / "features"


def feature_key(plan: Plan, names: tuple[str, ...], pair: str, timeframe: str, source: str) -> str:
    """SHA-256 (hex) of everything that decides the stored values except the candles themselves
    (those are checked row by row)."""
    nodes = list(plan.nodes)
    spec = {
        "format": [FORMAT, STORE_FORMAT],
        "code": _code(plan),
        "features": {name: plan.nodes[plan.outputs[name]].describe(nodes) for name in names},
        "plan": plan.describe(),
        "pair": pair,
        "timeframe": timeframe,
        "source": source,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _code(plan: Plan) -> dict[str, str]:
    """The source text of each function the plan calls: editing a function (a project plugin, an
    engine indicator) makes another key. Helpers those functions call are not covered (STORE_FORMAT)."""
    out = {}
    for name in sorted({n.args[0] for n in plan.nodes if n.op == "call"}):
        impl = plan.registry.functions[name].impl
        try:
            text = inspect.getsource(impl)
        except (OSError, TypeError):  # built without source (a C function, a lambda in a REPL)
            text = getattr(impl, "__qualname__", repr(impl))
        out[name] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


@dataclass(frozen=True)
class FeatureResult:
    """A feature matrix and how it was obtained.

    ``action``: ``computed`` (from scratch), ``read`` (all rows stored) or ``extended`` (stored rows
    plus new ones). ``computed``: rows the plan evaluated (new rows plus their look-back);
    ``new``: rows appended after the stored end; ``reused``: rows taken from the file."""

    x: np.ndarray
    action: str
    computed: int
    new: int
    reused: int
    reason: str


class FeatureStore:
    """Feature matrices under ``root`` (default: ``$ENGINE_HOME/features``)."""

    def __init__(self, root: Path | None = None):
        self.root = root if root is not None else default_features_root()
        self.done: list[tuple[str, FeatureResult]] = []  # (pair, result) of each matrix asked for

    def summary(self) -> str:
        """One line on what this store did: rows read, extended and computed."""
        reused = sum(r.reused for _, r in self.done)
        computed = sum(r.computed for _, r in self.done)
        new = sum(r.new for _, r in self.done)
        return (
            f"feature store {self.root}: {len(self.done)} matrices, {reused:,} rows read, "
            f"{new:,} new rows ({computed:,} computed with their look-back)"
        )

    def path(self, key: str, pair: str, timeframe: str) -> Path:
        """The folder of one matrix's Parquet parts."""
        return self.root / timeframe / pair_key(pair) / key[:24]

    def matrix(
        self, plan: Plan, names: tuple[str, ...], candles: pd.DataFrame, *, pair: str, source: str = ""
    ) -> FeatureResult:
        """The ``(len(candles), len(names))`` float32 matrix of :func:`feature_matrix`, from the store
        where it holds the rows, computing (and storing) the rest."""
        result = self._matrix(plan, names, candles, pair, source)
        self.done.append((pair, result))
        return result

    def _matrix(
        self, plan: Plan, names: tuple[str, ...], candles: pd.DataFrame, pair: str, source: str
    ) -> FeatureResult:
        if any(node.op == "feed" for node in plan.nodes):
            x = feature_matrix(plan, names, candles)
            return FeatureResult(x, "computed", len(x), len(x), 0, "features read feeds: not stored")
        key = feature_key(plan, names, pair, plan.timeframe, source)
        path = self.path(key, pair, plan.timeframe)
        times = _times(candles)
        hashes = candle_hashes(times, candles)
        stored, reason = self._read(path, key, names)
        if stored is not None:
            reason = _mismatch(stored, times, hashes)
        if stored is None or reason:
            x = feature_matrix(plan, names, candles)
            self._write(path, key, names, Stored(times, hashes, x))
            return FeatureResult(x, "computed", len(x), len(x), 0, reason)
        have = len(stored.times)
        if len(times) <= have:
            return FeatureResult(stored.x[: len(times)], "read", 0, 0, len(times), "stored")
        x, start = _extend(plan, names, candles, stored.x)
        if start == 0:
            reason = "the look-back did not reproduce the stored rows: computed from the start"
        self._write(path, key, names, Stored(times, hashes, x), first=0 if start == 0 else have)
        if start == 0:
            return FeatureResult(x, "computed", len(x), len(x), 0, reason)
        return FeatureResult(x, "extended", len(x) - start, len(x) - have, have, "new candles")

    def _read(self, path: Path, key: str, names: tuple[str, ...]) -> tuple[Stored | None, str]:
        if not path.exists():
            return None, "not stored yet"
        try:
            return read_stored(path, key, names), ""
        except StoredFileError as exc:
            log.warning("feature store: %s; computing the features again", exc)
            shutil.rmtree(path, ignore_errors=True)
            return None, f"unreadable file: {exc}"

    def _write(self, path: Path, key: str, names: tuple[str, ...], stored: Stored, first: int = 0) -> None:
        # A store that cannot be written (read-only home, full disk) costs speed, not the run.
        try:
            write_stored(path, key, names, stored, first)
        except OSError as exc:
            log.warning("feature store: cannot write %s (%s); features are not kept", path, exc)


def _times(candles: pd.DataFrame) -> np.ndarray:
    index = candles.index
    if isinstance(index, pd.DatetimeIndex):
        return index.as_unit("ns").asi8
    return np.asarray(index, dtype=np.int64)


def _mismatch(stored: Stored, times: np.ndarray, hashes: np.ndarray) -> str:
    """Why the stored rows do not belong to these candles ("" when they do, on their common span)."""
    n = min(len(stored.times), len(times))
    if n == 0:
        return "no candles in common"
    same = (stored.times[:n] == times[:n]) & (stored.hashes[:n] == hashes[:n])
    if same.all():
        return ""
    first = int(np.argmin(same))
    when = pd.Timestamp(int(times[first]), tz="UTC")
    if first == 0 and stored.times[0] != times[0]:
        return (
            f"the candles start at {when}, the stored rows at {pd.Timestamp(int(stored.times[0]), tz='UTC')}"
        )
    return f"the candle at {when} differs from the one the stored rows were computed on"


def _lookback(plan: Plan) -> tuple[int, int]:
    """(first look-back, rows compared): 4x the plan's warm-up; and at least two candles of its
    highest timeframe compared, so an ``@1d`` value is seen changing inside the comparison."""
    base = timeframe_seconds(plan.timeframe)
    widest = max(timeframe_seconds(tf) for tf in plan.timeframes) // base
    compare = max(64, 2 * widest)
    return max(4 * plan.warmup, 2 * compare, 256), compare


def _extend(
    plan: Plan, names: tuple[str, ...], candles: pd.DataFrame, stored: np.ndarray
) -> tuple[np.ndarray, int]:
    """The stored rows plus the new ones; and the first candle computed (0: the whole history)."""
    have = len(stored)
    lookback, compare = _lookback(plan)
    while True:
        start = max(0, have - lookback)
        tail = feature_matrix(plan, names, candles.iloc[start:])
        if start == 0:
            return tail, 0
        fresh = tail[have - compare - start : have - start]
        if agree(fresh, stored[have - compare :]):
            return np.concatenate([stored, tail[have - start :]]), start
        lookback *= 4
