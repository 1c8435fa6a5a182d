"""`engine optimize`: search a strategy's declared input ranges with Optuna, validated walk-forward.

    result = optimize_bot("bots/eth_btc_trend.yaml", data_dir="data", settings=OptimizeSettings(trials=200))
    result.folds[0].best_params, result.oos, result.degradation, result.recommended

The candles are loaded once. Each trial compiles the strategy with the trial's params (compiled
strategies are cached by params), computes the signals over the train window (warmed up on the
candles before it) and runs the trading kernel there; the objective is one metric of that run, or a
penalty when the run made fewer than ``min_trades`` trades. Every fold's best params are then run on
the fold's test window, which no trial has seen: the gap between the two is the overfitting.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsl.errors import Diagnostic, DiagnosticError, did_you_mean
from dsl.timeframes import timeframe_seconds
from engine.backtest._bot_params import write_bot_params
from engine.backtest._search_space import InputValue, SearchParam, search_space
from engine.backtest.walkforward import Window, walk_forward_windows
from engine.config import LoadedBot, LoadedStrategy, StrategyCompiler, load_bot

__all__ = [
    "METRICS",
    "PENALTY",
    "Evaluator",
    "FoldResult",
    "OptimizeResult",
    "OptimizeSettings",
    "SearchParam",
    "objective_value",
    "optimize_bot",
    "search_space",
    "stitch_results",
    "write_bot_params",
]

METRICS = ("sharpe", "sortino", "calmar", "total_return", "profit_factor")
PENALTY = -1e9  # a trial with too few trades; plus its trade count, so that more trades rank higher
_CAP = 1e6  # an infinite ratio (no losing trade or day) counts as this much


@dataclass(frozen=True, slots=True)
class OptimizeSettings:
    trials: int = 100  # per fold
    folds: int = 3
    train_ratio: float = 0.7
    anchored: bool = False
    metric: str = "sharpe"
    min_trades: int = 10  # in a train window; fewer makes the trial's value PENALTY + trades
    seed: int = 42
    jobs: int = 1
    only: tuple[str, ...] = ()
    storage: str | None = None  # an Optuna RDB URL shared by workers on several machines (None: private)
    study: str | None = None  # the shared studies' name prefix (default: optimize-<bot file stem>)

    def check(self) -> None:
        problems = []
        if self.metric not in METRICS:
            problems.append(
                f"--metric must be one of {', '.join(METRICS)}{did_you_mean(self.metric, METRICS)}"
            )
        if self.trials < 1:
            problems.append(f"--trials must be at least 1, got {self.trials}")
        if self.jobs < 1:
            problems.append(f"--jobs must be at least 1, got {self.jobs}")
        if self.min_trades < 0:
            problems.append(f"--min-trades cannot be negative, got {self.min_trades}")
        if problems:
            raise DiagnosticError([Diagnostic("OPT001", p) for p in problems])


def objective_value(metrics: Mapping[str, Any], metric: str, min_trades: int) -> float:
    """What a trial scores: ``metrics[metric]``, capped when infinite; PENALTY (+ trades) when the run
    made fewer than ``min_trades`` trades or the metric is undefined (no variation, no trade)."""
    trades = int(metrics.get("trades", 0))
    value = metrics.get(metric)
    if trades < min_trades or value is None or math.isnan(float(value)):
        return PENALTY + trades
    return max(min(float(value), _CAP), -_CAP)


class Evaluator:
    """Runs a bot's strategy with given params over one time window of preloaded candles."""

    def __init__(
        self,
        bot: LoadedBot,
        candles: Mapping[str, pd.DataFrame],
        trading: Any,  # engine.trading.params.TradingParams
        *,
        cache_size: int = 64,
    ):
        self.bot = bot
        self.candles = dict(candles)
        self.trading = trading
        self.base = dict(bot.strategy.inputs)  # values of the inputs a search leaves alone
        self._cache: OrderedDict[tuple, LoadedStrategy] = OrderedDict()
        self._cache_size = cache_size
        self._compiler = StrategyCompiler(bot.strategy.path)
        self.compiles = 0

    def _compile(self, values: Mapping[str, InputValue]) -> LoadedStrategy:
        # One compiler for all trials: the file is read and analysed once, only the plan per params.
        return self._compiler.compile(values)

    def strategy(self, values: Mapping[str, InputValue]) -> LoadedStrategy:
        """The strategy compiled with ``values`` over the bot's params (cached: TPE repeats itself)."""
        merged = {**self.base, **values}
        key = tuple(sorted(merged.items()))
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        strategy = self._compile(merged)
        self.compiles += 1
        self._cache[key] = strategy
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return strategy

    def run(self, values: Mapping[str, InputValue], start: pd.Timestamp, end: pd.Timestamp) -> Any:
        """A backtest on [start, end): indicators warm up on the candles before ``start`` (the strategy's
        warm-up length, as live trading does), entries and exits happen only inside the window."""
        from engine.backtest.inputs import PairInput
        from engine.backtest.runner import run_backtest
        from engine.strategy import compute_signals

        strategy = self.strategy(values)
        inputs = {}
        for pair, frame in self.candles.items():
            first, last = frame.index.searchsorted([start, end])
            if last <= first:
                continue
            lo = max(0, first - strategy.warmup)
            window = frame.iloc[lo:last]
            signals = compute_signals(strategy, window)
            cut = first - lo
            inputs[pair] = PairInput.from_frames(
                window.iloc[cut:], signals.iloc[cut:], timeframe=strategy.timeframe
            )
        if not inputs:
            raise DiagnosticError([Diagnostic("OPT003", f"no candles between {start} and {end}")])
        return run_backtest(inputs, self.trading)


@dataclass(frozen=True)
class FoldResult:
    window: Window
    best_params: dict[str, InputValue]
    in_sample: dict[str, Any]  # metrics of the best params on the train window
    out_of_sample: dict[str, Any]  # the same params on the unseen test window
    baseline: dict[str, Any]  # the bot's own params on the test window
    trials: int
    rejected: int  # trials below --min-trades (or failing to compile)


@dataclass(frozen=True)
class OptimizeResult:
    bot: str
    strategy: str
    timeframe: str
    pairs: list[str]
    settings: OptimizeSettings
    space: list[SearchParam]
    current: dict[str, InputValue]
    folds: list[FoldResult]
    oos: dict[str, Any]  # every fold's test window with that fold's best params, chained
    baseline_oos: dict[str, Any]  # the bot's own params over the same test windows
    mean_in_sample: float
    mean_out_of_sample: float
    degradation: float | None  # mean OOS / mean IS of the metric (None when IS <= 0)
    recommended: dict[str, InputValue] | None
    recommendation: str  # which params are recommended, and why
    elapsed: float  # seconds spent in the studies
    jobs: int
    synthetic: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def trials_per_second(self) -> float:
        total = sum(f.trials for f in self.folds)
        return total / self.elapsed if self.elapsed > 0 else math.nan


def stitch_results(results: Sequence[Any], initial_capital: float) -> dict[str, Any]:
    """Metrics of consecutive test-window runs chained into one account: each window starts with the
    equity the previous one ended with (its equity, profits and fees scaled accordingly)."""
    from engine.backtest.metrics import compute_metrics

    scale = 1.0
    curves, trades = [], []
    for result in results:
        curves.append(result.equity * scale)
        frame = result.trades.copy()
        for column in ("amount", "profit_abs", "fees"):
            frame[column] = frame[column] * scale
        trades.append(frame)
        scale *= float(result.equity.iloc[-1]) / initial_capital
    equity = pd.concat(curves)
    equity = equity[~equity.index.duplicated(keep="last")]
    return compute_metrics(pd.concat(trades, ignore_index=True), equity, initial_capital)


def _warmup_margin(bot: LoadedBot, evaluator: Evaluator, space: Sequence[SearchParam]) -> int:
    """Candles to load before the range: the longest warm-up over the current params and the ends of
    the integer ranges (window lengths)."""
    longest = bot.strategy.warmup
    ints = [p for p in space if p.kind == "int"]
    for pick in ("low", "high"):
        if ints:
            with_ends = {p.name: int(getattr(p, pick)) for p in ints}
            # A combination that fails to compile is reported by the trials that try it.
            with contextlib.suppress(DiagnosticError):
                longest = max(longest, evaluator.strategy(with_ends).warmup)
    return longest


def _load(
    bot: LoadedBot, source: Any, start: Any, end: Any, margin: int
) -> tuple[dict[str, pd.DataFrame], pd.Timestamp, pd.Timestamp]:
    """Every pair's candles from ``margin`` candles before ``start`` to ``end``, and the range."""
    timeframe = bot.strategy.timeframe
    step = pd.Timedelta(seconds=timeframe_seconds(timeframe))
    start_ts = None if start is None else _utc(start)
    end_ts = None if end is None else _utc(end)
    load_from = None if start_ts is None else start_ts - step * margin
    candles: dict[str, pd.DataFrame] = {}
    problems: list[Diagnostic] = []
    for pair in bot.model.pairs:
        try:
            frame = source.load(pair, timeframe, load_from, end_ts)
        except DiagnosticError as error:
            problems.extend(error.diagnostics)
            continue
        if frame.empty or (start_ts is not None and frame.index[-1] < start_ts):
            problems.append(Diagnostic("DATA016", f"{pair}: no {timeframe} candles in the requested range"))
            continue
        candles[pair] = frame
    if problems:
        raise DiagnosticError(problems)
    firsts = [
        f.index[f.index.searchsorted(start_ts)] if start_ts is not None else f.index[0]
        for f in candles.values()
    ]
    range_start = min(firsts)
    range_end = max(f.index[-1] for f in candles.values()) + step
    if end_ts is not None:
        range_end = min(range_end, end_ts)
    return candles, range_start, range_end


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _degradation(
    is_values: Sequence[float], oos_values: Sequence[float], neutral: float
) -> tuple[float, float, float | None]:
    """Mean IS and OOS metric over the folds and their ratio. An undefined OOS value (no trade, no
    variation) counts as ``neutral`` (no edge), so a fold that stops trading cannot flatter the mean."""
    ins = [v for v in is_values if math.isfinite(v)]
    outs = [v if math.isfinite(v) else neutral for v in oos_values]
    mean_is = float(np.mean(ins)) if ins else math.nan
    mean_oos = float(np.mean(outs)) if outs else math.nan
    ratio = mean_oos / mean_is if mean_is > 0 and math.isfinite(mean_oos) else None
    return mean_is, mean_oos, ratio


def _metric(metrics: Mapping[str, Any], name: str) -> float:
    value = metrics.get(name)
    if value is None:
        return math.nan
    value = float(value)
    return max(min(value, _CAP), -_CAP) if not math.isnan(value) else math.nan


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def optimize_bot(
    bot_path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    start: Any = None,
    end: Any = None,
    profile: str | None = None,
    settings: OptimizeSettings | None = None,
    store_root: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> OptimizeResult:
    """Walk-forward optimisation of a bot's strategy inputs (see the module docstring)."""
    from engine.backtest._studies import StudyJob, run_studies
    from engine.backtest.from_config import trading_params
    from engine.data.source import open_source

    settings = settings or OptimizeSettings()
    settings.check()
    bot = load_bot(bot_path, profile=profile)
    space = search_space(bot.strategy, settings.only)
    source = open_source(data_dir=data_dir, exchange=bot.model.exchange.name, store_root=store_root)
    trading = trading_params(bot)
    evaluator = Evaluator(bot, {}, trading)
    candles, range_start, range_end = _load(bot, source, start, end, _warmup_margin(bot, evaluator, space))
    evaluator.candles = candles
    windows = walk_forward_windows(
        range_start,
        range_end,
        bot.strategy.timeframe,
        folds=settings.folds,
        train_ratio=settings.train_ratio,
        anchored=settings.anchored,
    )
    # The first backtest pays for loading the compiled kernel; do it before any worker is forked.
    evaluator.run({}, *windows[0].train)
    job = StudyJob(Path(bot_path), profile, candles, space, windows, settings)
    studies = run_studies(job, evaluator, progress=progress)

    folds: list[FoldResult] = []
    oos_runs, base_runs = [], []
    for window, study in zip(windows, studies.best, strict=True):
        best_in = evaluator.run(study.params, *window.train)
        best_out = evaluator.run(study.params, *window.test)
        base_out = evaluator.run({}, *window.test)
        oos_runs.append(best_out)
        base_runs.append(base_out)
        folds.append(
            FoldResult(
                window,
                dict(study.params),
                best_in.metrics,
                best_out.metrics,
                base_out.metrics,
                study.trials,
                study.rejected,
            )
        )
    metric = settings.metric
    mean_is, mean_oos, ratio = _degradation(
        [_metric(f.in_sample, metric) for f in folds],
        [_metric(f.out_of_sample, metric) for f in folds],
        neutral=1.0 if metric == "profit_factor" else 0.0,
    )
    recommended, why = _recommend(folds, settings.min_trades)
    synthetic = _synthetic(source, bot)
    return OptimizeResult(
        bot=bot.model.bot,
        strategy=bot.strategy.model.strategy,
        timeframe=bot.strategy.timeframe,
        pairs=list(candles),
        settings=settings,
        space=space,
        current={p.name: bot.strategy.inputs[p.name] for p in space},
        folds=folds,
        oos=stitch_results(oos_runs, trading.initial_capital),
        baseline_oos=stitch_results(base_runs, trading.initial_capital),
        mean_in_sample=mean_is,
        mean_out_of_sample=mean_oos,
        degradation=ratio,
        recommended=recommended,
        recommendation=why,
        elapsed=studies.elapsed,
        jobs=studies.jobs,
        synthetic=synthetic,
    )


def _recommend(folds: Sequence[FoldResult], min_trades: int) -> tuple[dict[str, InputValue] | None, str]:
    """The most recent fold whose best params met --min-trades in training: those params were chosen on
    the latest data, which is what re-optimising before going live would do; the walk-forward rows
    measure how well that habit has held up on data it had not seen."""
    for fold in reversed(folds):
        if int(fold.in_sample.get("trades", 0)) >= min_trades:
            latest = "the most recent fold" if fold is folds[-1] else f"fold {fold.window.fold}, the latest"
            return dict(fold.best_params), (
                f"best params of {latest} with at least {min_trades} trades in training: "
                "chosen on the most recent data, as re-optimising before going live would do"
            )
    return None, f"no fold found params with at least {min_trades} trades in its train window"


def _synthetic(source: Any, bot: LoadedBot) -> bool:
    check = getattr(source, "synthetic", None) or getattr(source, "is_synthetic", None)
    if check is None:
        return False
    try:
        return any(bool(check(pair, bot.strategy.timeframe)) for pair in bot.model.pairs)
    except DiagnosticError:
        return False
