"""Walk-forward windows: the data range cut into consecutive (train, test) pairs.

Rolling (the default): every window has the same train length; window k+1 starts one test length
after window k, so the test parts tile the end of the range without gaps or overlap and the train
part of a window may reuse an earlier window's test part (it is history by then)::

    |---- train 0 ----|-- test 0 --|
                 |---- train 1 ----|-- test 1 --|
                              |---- train 2 ----|-- test 2 --|

Anchored: the same test parts, but every train part starts at the beginning of the range.

Boundaries fall on candle open times (multiples of the timeframe from the range start). Within a
window the test part always starts where the train part ends: they never overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from dsl.errors import Diagnostic, DiagnosticError
from dsl.timeframes import timeframe_seconds

__all__ = ["MIN_WINDOW_CANDLES", "Window", "walk_forward_windows"]

MIN_WINDOW_CANDLES = 20  # fewer candles than this in a train or test part says nothing about a strategy


@dataclass(frozen=True, slots=True)
class Window:
    """One fold: train on [train_start, train_end), then test on [test_start, test_end)."""

    fold: int  # 1-based
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    @property
    def train(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.train_start, self.train_end

    @property
    def test(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.test_start, self.test_end


def _error(message: str) -> DiagnosticError:
    return DiagnosticError([Diagnostic("OPT002", message)])


def walk_forward_windows(
    start: pd.Timestamp,
    end: pd.Timestamp,
    timeframe: str,
    *,
    folds: int,
    train_ratio: float = 0.7,
    anchored: bool = False,
    min_candles: int = MIN_WINDOW_CANDLES,
) -> list[Window]:
    """``folds`` (train, test) windows over [start, end); ``train_ratio`` is the train share of each
    rolling window (of the first window when ``anchored``)."""
    if folds < 1:
        raise _error(f"--folds must be at least 1, got {folds}")
    if not 0.0 < train_ratio < 1.0:
        raise _error(f"--train-ratio must lie strictly between 0 and 1, got {train_ratio:g}")
    step = pd.Timedelta(seconds=timeframe_seconds(timeframe))
    candles = int((end - start) // step)
    test_share = 1.0 - train_ratio
    # Rolling: candles = train + folds * test, with train / (train + test) = train_ratio.
    test = math.floor(candles * test_share / (1.0 + (folds - 1) * test_share))
    train = candles - folds * test
    if test < min_candles or train < min_candles:
        need = math.ceil(min_candles * (1.0 + (folds - 1) * test_share) / min(test_share, train_ratio))
        raise _error(
            f"{candles} {timeframe} candles are too few for {folds} fold(s) at a train ratio of "
            f"{train_ratio:g}: each train and test part needs at least {min_candles} candles "
            f"(about {need} candles in all); use fewer --folds or a longer --from/--to range"
        )
    windows = []
    for k in range(folds):
        test_start = start + (train + k * test) * step
        train_start = start if anchored else start + k * test * step
        windows.append(Window(k + 1, train_start, test_start, test_start, test_start + test * step))
    return windows
