"""`engine backtest` end to end: bot file -> candles -> signals -> kernel -> result.

The candles of every pair are loaded with the strategy's warm-up *before* ``start`` so that the
first candle of the requested range already has settled indicators; entries before ``start`` are
masked, so trades open only inside the range.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dsl.errors import Diagnostic, DiagnosticError
from dsl.timeframes import timeframe_seconds
from engine.config import LoadedBot, load_bot

__all__ = ["BacktestRun", "load_pair_inputs", "run_bot_backtest"]


@dataclass
class BacktestRun:
    bot: LoadedBot
    result: Any  # engine.backtest.runner.BacktestResult
    candles: dict[str, pd.DataFrame]
    signals: dict[str, pd.DataFrame]  # signal columns plus "feature:<name>" columns, for reports
    start: pd.Timestamp
    end: pd.Timestamp
    synthetic: bool = False
    notes: list[Diagnostic] = field(default_factory=list)
    # "name.member" -> (candles judged without a value, candles judged), for the series the rules read.
    feed_gaps: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def timeframe(self) -> str:
        return self.bot.strategy.timeframe


def _utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def load_pair_inputs(
    bot: LoadedBot,
    source: Any,
    *,
    start: Any = None,
    end: Any = None,
    detail: str | None = None,
    progress: Callable[[str], None] | None = None,
    reader: Any = None,
) -> tuple[dict[str, Any], dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """PairInputs for every pair of ``bot`` from ``source`` (a engine.data CandleSource).
    ``progress`` is called with a short description before each step (for a progress bar).
    ``reader`` (an engine.feeds SeriesReader) supplies the point-in-time series the rules read; by
    default the engine's store, when the strategy reads any."""
    from engine.backtest.inputs import PairInput
    from engine.strategy import compute_signals

    strategy = bot.strategy
    timeframe = strategy.timeframe
    step = pd.Timedelta(seconds=timeframe_seconds(timeframe))
    start_ts, end_ts = _utc(start), _utc(end)
    load_from = None if start_ts is None else start_ts - step * strategy.warmup
    inputs: dict[str, Any] = {}
    candles_by_pair: dict[str, pd.DataFrame] = {}
    signals_by_pair: dict[str, pd.DataFrame] = {}
    problems: list[Diagnostic] = []
    from engine.feeds.context import contexts_for

    context_for = contexts_for(strategy.plan, bot.model.exchange.name, reader)
    for pair in bot.model.pairs:
        if progress is not None:
            progress(f"{pair}: candles and signals")
        try:
            candles = source.load(pair, timeframe, load_from, end_ts)
        except DiagnosticError as error:
            problems.extend(error.diagnostics)
            continue
        signals = compute_signals(strategy, candles, features=True, context=context_for(pair))
        if start_ts is not None:
            keep = candles.index >= start_ts
            candles, signals = candles[keep], signals[keep]
        if candles.empty:
            problems.append(Diagnostic("DATA016", f"{pair}: no {timeframe} candles in the requested range"))
            continue
        detail_frame = None
        if detail is not None:
            if timeframe_seconds(detail) >= timeframe_seconds(timeframe):
                raise DiagnosticError(
                    [
                        Diagnostic(
                            "CFG007",
                            f"--detail {detail} must be a lower timeframe than the strategy's {timeframe}",
                        )
                    ]
                )
            detail_frame = source.load(pair, detail, candles.index[0], candles.index[-1] + step)
        inputs[pair] = PairInput.from_frames(candles, signals, detail=detail_frame, timeframe=timeframe)
        candles_by_pair[pair] = candles
        signals_by_pair[pair] = signals
    if problems:
        raise DiagnosticError(problems)
    return inputs, candles_by_pair, signals_by_pair


def run_bot_backtest(
    bot_path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    start: Any = None,
    end: Any = None,
    profile: str | None = None,
    detail: str | None = None,
    store_root: Any = None,
    limits: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> BacktestRun:
    from engine.backtest.from_config import trading_params
    from engine.backtest.runner import run_backtest
    from engine.data.source import open_source
    from engine.feeds.context import contexts_for, uses_external_series
    from engine.feeds.coverage import feed_gaps
    from engine.feeds.store import store_reader

    bot = load_bot(bot_path, profile=profile)
    source = open_source(data_dir=data_dir, exchange=bot.model.exchange.name, store_root=store_root)
    reader = store_reader() if uses_external_series(bot.strategy.plan) else None
    inputs, candles, signals = load_pair_inputs(
        bot, source, start=start, end=end, detail=detail, progress=progress, reader=reader
    )
    if progress is not None:
        progress("simulating")
    result = run_backtest(inputs, trading_params(bot, limits))
    first = min(frame.index[0] for frame in candles.values())
    last = max(frame.index[-1] for frame in candles.values())
    # The store knows which series are synthetic samples; a plain data directory does not.
    check = getattr(source, "synthetic", None)
    synthetic = callable(check) and any(check(pair, bot.strategy.timeframe) for pair in candles)
    gaps = {}
    if reader is not None:
        gaps = feed_gaps(
            bot.strategy, candles, contexts_for(bot.strategy.plan, bot.model.exchange.name, reader)
        )
    return BacktestRun(bot, result, candles, signals, first, last, synthetic, feed_gaps=gaps)


def signal_counts(signals: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """How many candles raised each boolean signal, summed over pairs (for the summary)."""
    totals: dict[str, int] = {}
    for frame in signals.values():
        for column in ("entry_long", "exit_long", "entry_short", "exit_short"):
            totals[column] = totals.get(column, 0) + int(np.count_nonzero(frame[column].to_numpy()))
    return totals
