"""Walk-forward training and out-of-sample prediction.

For each test window: the training rows are those of the preceding ``train`` period whose label
interval ends before the window starts minus the embargo (:func:`engine.ml.windows.purge_mask`),
after each pair's warm-up, with a known label. One model per window (and per pair when the model file
says ``per_pair: true``) predicts the window's rows. Jobs run in worker processes forked from this one
(they share the feature arrays copy-on-write; nothing is pickled but the small results).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsl.timeframes import parse_duration, timeframe_seconds
from engine.config._model import Model
from engine.ml.errors import MLError
from engine.ml.features import usable_columns
from engine.ml.labels import CLASSES, UNKNOWN
from engine.ml.learners import Fitted, fit
from engine.ml.windows import Window, _iso, plan_windows, purge_mask

__all__ = ["JobResult", "PairData", "WalkForward", "fit_latest", "run_walkforward", "train_rows"]

_NS = 1_000_000_000


@dataclass
class PairData:
    """One pair's rows: candle open times (int64 ns), features (float32), labels, closes."""

    pair: str
    times: np.ndarray
    x: np.ndarray
    y: np.ndarray
    close: np.ndarray
    warmup: int = 0
    candles: Any = None  # the OHLCV frame the rows came from (for reports), when known


@dataclass
class JobResult:
    window: int
    pairs: tuple[int, ...]
    # Per pair in the group: (pair index, first test row, end test row) into that pair's arrays.
    spans: list[tuple[int, int, int]]
    proba: np.ndarray  # (rows, 3) float32, rows in span order
    baseline: np.ndarray  # (3,) class frequencies of the training labels
    train_rows: int
    dropped: list[int]  # feature columns unusable in this window (constant or all missing)
    fitted: Fitted | None  # kept for the last window only (the newest model)


@dataclass
class WalkForward:
    """The outcome: every job's result in window order, the windows and the spec's timing."""

    windows: list[Window]
    results: list[JobResult]
    pairs: list[PairData]
    timeframe_ns: int
    warnings: list[str] = field(default_factory=list)
    latest_models: dict[str, Fitted] | None = None  # run_walkforward(latest=True): fit_latest's models

    def latest(self) -> list[JobResult]:
        last = self.windows[-1].index
        return [r for r in self.results if r.window == last]


def train_rows(
    data: PairData, window: Window, timeframe_ns: int, horizon: int, purge: int, embargo: int
) -> np.ndarray:
    """Indexes of ``data``'s rows that may train the model of ``window``."""
    lo = int(np.searchsorted(data.times, window.train_start))
    hi = int(np.searchsorted(data.times, window.test_start))
    times = data.times[lo:hi]
    # The label interval spans `horizon` candles; `purge` may widen it (never narrow: checked on load).
    ends = times + max(horizon, purge) * timeframe_ns
    keep = purge_mask(times, ends, window.test_start, window.test_end - 1, embargo * timeframe_ns)
    keep &= data.y[lo:hi] != UNKNOWN
    if data.warmup > lo:
        keep[: data.warmup - lo] = False
    return lo + np.flatnonzero(keep)


@dataclass(frozen=True)
class _Job:
    window: Window
    group: tuple[int, ...]
    keep_model: bool
    threads: int = 1  # most LightGBM threads: 1 in the worker pool (a fit per core), more in fit_latest


_THREADED_ROWS = 200_000

# Set in this process and in each worker (by _init); a forked worker shares the arrays, not a copy.
_STATE: dict[str, object] = {}


def _init(spec: Model, pairs: list[PairData], tf_ns: int) -> None:
    _STATE.update(spec=spec, pairs=pairs, tf_ns=tf_ns)


def _init_worker(spec: Model, pairs: list[PairData], tf_ns: int) -> None:
    _init(spec, pairs, tf_ns)
    # Everything inherited is long-lived: the collector need not walk it again at each collection the
    # fits' small allocations trigger (and, after fork(), touching it would copy shared pages).
    gc.freeze()


def _context() -> multiprocessing.context.BaseContext:
    """fork while it is safe (no other thread, and OpenMP not started by an earlier LightGBM run in
    this process, which libgomp does not survive in a child); a fork server otherwise."""
    if "lightgbm" not in sys.modules and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver")


def _run_job(job: _Job) -> JobResult:
    spec: Model = _STATE["spec"]  # type: ignore[assignment]
    pairs: list[PairData] = _STATE["pairs"]  # type: ignore[assignment]
    tf_ns: int = _STATE["tf_ns"]  # type: ignore[assignment]
    window = job.window
    horizon = spec.label.horizon
    purge = spec.windows.purge if spec.windows.purge is not None else horizon
    xs, ys = [], []
    for i in job.group:
        rows = train_rows(pairs[i], window, tf_ns, horizon, purge, spec.windows.embargo)
        # A window's rows are nearly always one run: a view, not a copy (a year of rows is ~200 MB).
        take = (
            slice(int(rows[0]), int(rows[-1]) + 1)
            if len(rows) and rows[-1] - rows[0] + 1 == len(rows)
            else rows
        )
        xs.append(pairs[i].x[take])
        ys.append(pairs[i].y[take])
    # Several pairs' rows stay separate blocks: LightGBM bins them as one dataset without a copy.
    x: np.ndarray | list[np.ndarray] = xs[0] if len(xs) == 1 else xs
    y = ys[0] if len(ys) == 1 else np.concatenate(ys)
    where = (
        _where(window, [pairs[i].pair for i in job.group]) if window.index >= 0 else "for the latest model"
    )
    if len(y) < spec.windows.min_train_rows:
        raise MLError(
            "ML003",
            f"too little data for the windows: {len(y)} labelled training rows {where} "
            f"(windows.min_train_rows is {spec.windows.min_train_rows})",
        )
    classes = np.unique(y)
    if len(classes) < 2:
        raise MLError(
            "ML004",
            f"the training labels {where} are all {CLASSES[int(classes[0])].upper()}: a model needs two "
            "classes at least (a wider window, a smaller dead band or other pairs)",
        )
    columns, missing, constant = usable_columns(x)
    if len(columns) == 0:
        raise MLError("ML005", f"every feature is constant or missing {where}: nothing left to learn from")
    # Threads pay off only on big fits: on a few thousand rows OpenMP's overhead makes 2 threads slower
    # than 1 (measured: 28,800 rows x 51 features, 1.2 s with 1 thread, 3.0 s with 2).
    threads = job.threads if len(y) >= _THREADED_ROWS else 1
    fitted = fit(spec.learner, x, y, columns, spec.seed, threads)
    spans: list[tuple[int, int, int]] = []
    tests = []
    for i in job.group:
        data = pairs[i]
        a = int(np.searchsorted(data.times, window.test_start))
        b = int(np.searchsorted(data.times, window.test_end))
        spans.append((i, a, b))
        tests.append(data.x[a:b])
    test = tests[0] if len(tests) == 1 else np.concatenate(tests)
    proba = fitted.predict_proba(test) if len(test) else np.zeros((0, len(CLASSES)), np.float32)
    counts = np.bincount(y.astype(np.int64), minlength=len(CLASSES)).astype(np.float64)
    return JobResult(
        window.index,
        job.group,
        spans,
        proba,
        counts / counts.sum(),
        len(y),
        sorted(missing + constant),
        fitted.detached() if job.keep_model else None,
    )


def fit_latest(spec: Model, pairs: list[PairData]) -> dict[str, Fitted]:
    """The models that serve live: trained on the last ``train`` period of the data, every label
    known (purged at the end of the data as if the next candle were being predicted). Keys: "all",
    or each pair's name when ``per_pair``."""
    tf_ns = timeframe_seconds(spec.timeframe) * _NS
    _init(spec, pairs, tf_ns)
    try:
        # One fit at a time here: each may use every core (a year of candles is one big fit).
        jobs = _latest_jobs(spec, pairs, tf_ns, default_workers())
        return _latest_models(spec, pairs, [_run_job(job) for job in jobs])
    finally:
        _STATE.clear()


def _latest_jobs(spec: Model, pairs: list[PairData], tf_ns: int, threads: int) -> list[_Job]:
    after = max(int(d.times[-1]) for d in pairs) + tf_ns
    window = Window(-1, after - parse_duration(spec.windows.train) * _NS, after, after)
    groups = [(i,) for i in range(len(pairs))] if spec.per_pair else [tuple(range(len(pairs)))]
    return [_Job(window, group, True, threads) for group in groups]


def _latest_models(spec: Model, pairs: list[PairData], results: list[JobResult]) -> dict[str, Fitted]:
    out = {}
    for result in results:
        assert result.fitted is not None
        out[pairs[result.pairs[0]].pair if spec.per_pair else "all"] = result.fitted
    return out


def _where(window: Window, pairs: Sequence[str]) -> str:
    shown = ", ".join(pairs[:3]) + (" ..." if len(pairs) > 3 else "")
    return f"for window {window.index + 1} (test from {_iso(window.test_start)}, {shown})"


def default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def run_walkforward(
    spec: Model,
    pairs: list[PairData],
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    latest: bool = False,
) -> WalkForward:
    """Train and predict every window; raises :class:`MLError` for bad input (see docs/ml.md).
    ``latest``: also fit the models :func:`fit_latest` gives, as jobs of the same worker pool
    (``WalkForward.latest_models``), instead of one after another afterwards."""
    if not pairs:
        raise MLError("ML003", "no candles to train on")
    tf_ns = timeframe_seconds(spec.timeframe) * _NS
    for data in pairs:
        usable = int(np.count_nonzero(data.y != UNKNOWN))
        if usable == 0:
            raise MLError(
                "ML002",
                f"{data.pair}: the label horizon ({spec.label.horizon} candles) is longer than the data "
                f"({len(data.times)} candles): no row has a known label",
            )
    first = min(int(d.times[0]) for d in pairs)
    last = max(int(d.times[-1]) for d in pairs)
    windows = plan_windows(
        first,
        last,
        train_ns=parse_duration(spec.windows.train) * _NS,
        step_ns=parse_duration(spec.windows.step) * _NS,
        start_ns=start_ns,
        end_ns=end_ns,
    )
    groups = [(i,) for i in range(len(pairs))] if spec.per_pair else [tuple(range(len(pairs)))]
    jobs = [_Job(w, g, w is windows[-1]) for w in windows for g in groups]
    if latest:  # first: they are the largest fits (every label known), so they do not trail at the end
        jobs = _latest_jobs(spec, pairs, tf_ns, 1) + jobs
    _init(spec, pairs, tf_ns)
    workers = default_workers() if workers is None else max(1, workers)
    results: list[JobResult] = []
    try:
        if workers == 1 or len(jobs) == 1:
            for n, job in enumerate(jobs, 1):
                results.append(_run_job(job))
                if progress:
                    progress(n, len(jobs))
        else:
            context = _context()
            with warnings.catch_warnings():
                # Python warns about fork() whenever native libraries run threads (OpenBLAS's pool);
                # _context() already falls back to a fork server where it matters (OpenMP, Python threads).
                warnings.simplefilter("ignore", DeprecationWarning)
                pool = context.Pool(min(workers, len(jobs)), _init_worker, (spec, pairs, tf_ns))
            with pool:
                for n, result in enumerate(pool.imap(_run_job, jobs, chunksize=1), 1):
                    results.append(result)
                    if progress:
                        progress(n, len(jobs))
    finally:
        _STATE.clear()
    out = WalkForward(windows, [r for r in results if r.window >= 0], pairs, tf_ns)
    if latest:
        out.latest_models = _latest_models(spec, pairs, [r for r in results if r.window < 0])
    dropped = sorted({c for r in results for c in r.dropped})
    if dropped:
        out.warnings.append(
            f"feature columns {dropped} were constant or missing in some windows and left out there"
        )
    return out
