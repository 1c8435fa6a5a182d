"""Stored backtest runs: save one with its trades, list them, fetch one, compare several.

A run records what produced it (bot name, configuration hash, strategy name, parameters, data range,
timeframe, pairs) and what came out (a flat ``{name: value}`` of metrics, and the trade list). Runs with
the same configuration hash were made from the same configuration, so comparing them isolates the data
range; runs of one bot with different hashes show what a configuration change did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from engine.store.models import BacktestRun, BacktestTrade
from engine.store.records import ClosedTrade

__all__ = [
    "RunComparison",
    "compare_runs",
    "delete_backtest_run",
    "get_backtest_run",
    "get_backtest_runs",
    "list_backtest_runs",
    "save_backtest_run",
]


async def save_backtest_run(
    session: AsyncSession,
    *,
    bot_name: str,
    config_hash: str,
    strategy_name: str,
    data_start: datetime,
    data_end: datetime,
    timeframe: str,
    pairs: Sequence[str],
    metrics: Mapping[str, Any],
    trades: Iterable[ClosedTrade] = (),
    params: Mapping[str, Any] | None = None,
) -> BacktestRun:
    """Store a finished run and its trades; returns the run (its ``id`` identifies it from now on).
    Use :func:`engine.store.records.trades_from_frame` for the simulator's trade list."""
    if data_end < data_start:
        raise ValueError(f"data range ends ({data_end}) before it starts ({data_start})")
    rows = [
        BacktestTrade(
            pair=t.pair,
            side=t.side,
            open_time=t.open_time,
            close_time=t.close_time,
            open_price=float(t.open_price),
            close_price=float(t.close_price),
            amount=float(t.amount),
            profit_ratio=float(t.profit_ratio),
            profit_abs=float(t.profit_abs),
            fees=float(t.fees),
            exit_reason=t.exit_reason,
        )
        for t in trades
    ]
    run = BacktestRun(
        bot_name=bot_name,
        config_hash=config_hash,
        strategy_name=strategy_name,
        params=dict(params or {}),
        data_start=data_start,
        data_end=data_end,
        timeframe=timeframe,
        pairs=list(pairs),
        metrics=dict(metrics),
        trade_count=len(rows),
        trades=rows,
    )
    session.add(run)
    await session.flush()
    return run


async def list_backtest_runs(
    session: AsyncSession,
    *,
    bot_name: str | None = None,
    config_hash: str | None = None,
    strategy_name: str | None = None,
    limit: int = 50,
) -> list[BacktestRun]:
    """The newest ``limit`` runs matching the filters, newest first, without their trades."""
    query = select(BacktestRun)
    if bot_name is not None:
        query = query.where(BacktestRun.bot_name == bot_name)
    if config_hash is not None:
        query = query.where(BacktestRun.config_hash == config_hash)
    if strategy_name is not None:
        query = query.where(BacktestRun.strategy_name == strategy_name)
    query = query.order_by(BacktestRun.created_at.desc(), BacktestRun.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


def _with_trades(condition: Any) -> Any:
    return (
        select(BacktestRun)
        .where(condition)
        .options(selectinload(BacktestRun.trades))
        .execution_options(populate_existing=True)
    )


async def get_backtest_run(session: AsyncSession, run_id: int) -> BacktestRun | None:
    """One run with its trades loaded (``run.trades``, in the order they were saved)."""
    return (await session.execute(_with_trades(BacktestRun.id == run_id))).scalars().first()


async def get_backtest_runs(session: AsyncSession, run_ids: Sequence[int]) -> list[BacktestRun]:
    """The runs with these ids, trades loaded, in the order asked. An unknown id is a ``LookupError``."""
    found = {
        r.id: r for r in (await session.execute(_with_trades(BacktestRun.id.in_(list(run_ids))))).scalars()
    }
    missing = [str(i) for i in run_ids if i not in found]
    if missing:
        raise LookupError(f"no backtest run with id {', '.join(missing)}")
    return [found[i] for i in run_ids]


async def delete_backtest_run(session: AsyncSession, run_id: int) -> bool:
    result = await session.execute(
        delete(BacktestRun).where(BacktestRun.id == run_id).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RunComparison:
    """Runs side by side: ``metrics[name][i]`` and ``params[name][i]`` belong to ``run_ids[i]`` (None
    where a run lacks the value). ``params`` holds only the parameters that differ between the runs."""

    run_ids: tuple[int, ...]
    labels: tuple[str, ...]
    metrics: dict[str, tuple[Any, ...]]
    params: dict[str, tuple[Any, ...]]


def compare_runs(runs: Sequence[BacktestRun], metric_names: Sequence[str] | None = None) -> RunComparison:
    """Line up the runs' metrics (all of them in first-seen order, or ``metric_names``) and the
    parameters that differ."""
    names = list(metric_names) if metric_names is not None else _union(r.metrics for r in runs)
    metrics = {name: tuple(r.metrics.get(name) for r in runs) for name in names}
    params = {
        name: values
        for name in _union(r.params for r in runs)
        if len(set(map(repr, values := tuple(r.params.get(name) for r in runs)))) > 1
    }
    labels = tuple(
        f"#{r.id} {r.bot_name} {r.config_hash[:8]} {r.data_start:%Y-%m-%d}..{r.data_end:%Y-%m-%d}"
        for r in runs
    )
    return RunComparison(tuple(r.id for r in runs), labels, metrics, params)


def _union(documents: Iterable[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for document in documents:
        seen.update(dict.fromkeys(document))
    return list(seen)
