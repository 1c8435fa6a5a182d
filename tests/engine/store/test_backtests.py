from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store import (
    BacktestTrade,
    ClosedTrade,
    PositionSide,
    compare_runs,
    delete_backtest_run,
    get_backtest_run,
    get_backtest_runs,
    list_backtest_runs,
    save_backtest_run,
    trades_from_frame,
)

Factory = async_sessionmaker[AsyncSession]
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 3, 1, tzinfo=UTC)


def trade_frame(n: int = 5) -> pd.DataFrame:
    opens = pd.date_range("2024-01-02", periods=n, freq="1D", tz="UTC")
    rng = np.random.default_rng(3)
    price = 100 + rng.normal(0, 1, n)
    return pd.DataFrame(
        {
            "pair": ["BTC/USDT", "ETH/USDT"] * (n // 2) + ["BTC/USDT"] * (n % 2),
            "side": np.where(np.arange(n) % 3 == 0, "short", "long").astype(object),
            "open_time": opens,
            "close_time": opens + pd.Timedelta(hours=6),
            "open_price": price,
            "close_price": price * 1.01,
            "amount": np.full(n, 0.125),
            "profit_ratio": np.full(n, 0.01),
            "profit_abs": price * 0.00125,
            "fees": np.full(n, 0.02),
            "exit_reason": ["roi", "stop_loss", "exit_signal", "trailing_stop", "roi"][:n] * (n // 5 or 1),
        }
    )


async def save(factory: Factory, frame: pd.DataFrame, **kw: object) -> int:
    fields_: dict[str, object] = {
        "bot_name": "btc-trend",
        "config_hash": "abc123def456",
        "strategy_name": "ema_cross",
        "params": {"fast": 12, "slow": 26},
        "data_start": START,
        "data_end": END,
        "timeframe": "1h",
        "pairs": ["BTC/USDT", "ETH/USDT"],
        "metrics": {
            "total_return": 0.12,
            "sharpe": np.float64(1.4),
            "max_drawdown": -0.08,
            "trades": np.int64(len(frame)),
        },
        "trades": trades_from_frame(frame),
    }
    fields_.update(kw)
    async with factory() as session, session.begin():
        run = await save_backtest_run(session, **fields_)  # type: ignore[arg-type]
    return run.id


def test_trade_records_match_the_trading_kernels_trade_list() -> None:
    state = pytest.importorskip("engine.trading.state")
    assert tuple(f.name for f in fields(ClosedTrade)) == tuple(state.TRADE_COLUMNS)


def test_trades_from_frame_reports_missing_columns() -> None:
    with pytest.raises(ValueError, match="lacks columns: exit_reason"):
        trades_from_frame(trade_frame().drop(columns="exit_reason"))


async def test_backtest_run_round_trip(factory: Factory) -> None:
    frame = trade_frame()
    run_id = await save(factory, frame)
    async with factory() as session:
        run = await get_backtest_run(session, run_id)
    assert run is not None
    assert (run.bot_name, run.config_hash, run.strategy_name, run.timeframe) == (
        "btc-trend",
        "abc123def456",
        "ema_cross",
        "1h",
    )
    assert (run.data_start, run.data_end, run.pairs, run.params) == (
        START,
        END,
        ["BTC/USDT", "ETH/USDT"],
        {"fast": 12, "slow": 26},
    )
    assert run.metrics == {"total_return": 0.12, "sharpe": 1.4, "max_drawdown": -0.08, "trades": 5}
    assert run.trade_count == len(run.trades) == 5
    back = pd.DataFrame([{f.name: getattr(t, f.name) for f in fields(ClosedTrade)} for t in run.trades])
    back["side"] = back["side"].map(str)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False, check_exact=True)


async def test_runs_without_trades_and_with_nan_metrics(factory: Factory) -> None:
    run_id = await save(factory, trade_frame(0), metrics={"sharpe": float("nan"), "trades": 0}, trades=[])
    async with factory() as session:
        run = await get_backtest_run(session, run_id)
    assert run is not None and run.trades == [] and run.metrics == {"sharpe": None, "trades": 0}


async def test_list_filters_and_orders_newest_first(factory: Factory) -> None:
    a = await save(factory, trade_frame())
    b = await save(factory, trade_frame(), config_hash="other")
    c = await save(factory, trade_frame(), bot_name="eth-mr", strategy_name="mean_rev")
    async with factory() as session:
        assert [r.id for r in await list_backtest_runs(session)] == [c, b, a]
        assert [r.id for r in await list_backtest_runs(session, bot_name="btc-trend")] == [b, a]
        assert [r.id for r in await list_backtest_runs(session, config_hash="abc123def456")] == [c, a]
        assert [r.id for r in await list_backtest_runs(session, strategy_name="mean_rev")] == [c]
        assert [r.id for r in await list_backtest_runs(session, limit=1)] == [c]


async def test_compare_runs_lines_up_metrics_and_differing_params(factory: Factory) -> None:
    a = await save(factory, trade_frame(), metrics={"total_return": 0.1, "sharpe": 1.0})
    b = await save(
        factory,
        trade_frame(),
        params={"fast": 10, "slow": 26, "rsi": 14},
        metrics={"total_return": 0.2, "win_rate": 0.6},
        data_start=START + timedelta(days=10),
    )
    async with factory() as session:
        runs = await get_backtest_runs(session, [b, a])
        with pytest.raises(LookupError, match="no backtest run with id 999"):
            await get_backtest_runs(session, [a, 999])
    table = compare_runs(runs)
    assert table.run_ids == (b, a)
    assert table.metrics == {"total_return": (0.2, 0.1), "win_rate": (0.6, None), "sharpe": (None, 1.0)}
    assert table.params == {"fast": (10, 12), "rsi": (14, None)}
    assert table.labels[0] == f"#{b} btc-trend abc123de 2024-01-11..2024-03-01"
    assert compare_runs(runs, ["sharpe"]).metrics == {"sharpe": (None, 1.0)}


async def test_deleting_a_run_deletes_its_trades(factory: Factory) -> None:
    keep = await save(factory, trade_frame())
    gone = await save(factory, trade_frame())
    async with factory() as session, session.begin():
        assert await delete_backtest_run(session, gone)
        assert not await delete_backtest_run(session, gone)
    async with factory() as session:
        assert await get_backtest_run(session, gone) is None
        remaining = await session.scalar(select(func.count()).select_from(BacktestTrade))
        assert remaining == 5 and (await get_backtest_run(session, keep)) is not None


async def test_a_range_that_ends_before_it_starts_is_refused(factory: Factory) -> None:
    with pytest.raises(ValueError, match="ends"):
        await save(factory, trade_frame(), data_start=END, data_end=START)


def test_closed_trade_sides_are_validated() -> None:
    frame = trade_frame(1)
    frame["side"] = "sideways"
    with pytest.raises(ValueError, match="sideways"):
        trades_from_frame(frame)
    assert trades_from_frame(trade_frame(1))[0].side is PositionSide.SHORT
