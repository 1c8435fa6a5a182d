"""The example news strategy trades the same in a backtest and through `engine run --replay` (both read
the same store through the same join); without news it never enters; news cut at t changes no trade
before t."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from engine.sentiment.synth import store_generated_news
from tests.engine.runtime.conftest import make_workspace
from tests.engine.runtime.helpers import (
    closed_backtest_trades,
    database,
    db_trades,
    db_url,
    make_runtime,
    trade_keys,
)

pytestmark = pytest.mark.slow
BOT = "eth_news.yaml"


async def test_news_strategy_replay_equals_backtest(tmp_path, monkeypatch) -> None:
    root = make_workspace(tmp_path, [BOT], days=45)
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(root))
    await asyncio.to_thread(store_generated_news, "2023-12-15", "2024-02-20", url=db_url(root), coin="eth")
    expected = await asyncio.to_thread(closed_backtest_trades, root, BOT)
    assert len(expected) >= 3, "the sample should trade"
    async with database(root) as factory:
        runtime = make_runtime(root, factory)
        await runtime.run()
        live = await db_trades(factory)
    got = [(p, pd.Timestamp(o), pd.Timestamp(c), r) for _, p, _, o, c, _, _, _, r in live]
    assert got == trade_keys(expected)


async def test_without_news_the_rules_never_enter(tmp_path, monkeypatch) -> None:
    root = make_workspace(tmp_path, [BOT], days=20)
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(root))
    async with database(root):
        pass
    assert (await asyncio.to_thread(closed_backtest_trades, root, BOT)).empty


async def test_news_cut_at_t_changes_no_trade_before_t(tmp_path, monkeypatch) -> None:
    full_root = make_workspace(tmp_path / "full", [BOT], days=45)
    cut_root = make_workspace(tmp_path / "cut", [BOT], days=45)
    for root, end in ((full_root, "2024-02-20"), (cut_root, "2024-02-01")):
        await asyncio.to_thread(store_generated_news, "2023-12-15", end, url=db_url(root), coin="eth")
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(full_root))
    full = await asyncio.to_thread(closed_backtest_trades, full_root, BOT)
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(cut_root))
    cut = await asyncio.to_thread(closed_backtest_trades, cut_root, BOT)
    t = pd.Timestamp("2024-02-01", tz="UTC")
    before = lambda trades: [row for row in trade_keys(trades) if row[2] < t]  # noqa: E731
    assert before(full) and before(full) == before(cut)
