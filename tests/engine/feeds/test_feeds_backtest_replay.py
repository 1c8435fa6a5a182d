"""A strategy reading two feeds trades the same in a backtest and through `engine run --replay`, both
reading the same store through the same as-of join; and a feed cut at t changes nothing before t."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.feeds.synth import store_generated_feeds
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


async def test_feed_strategy_replay_equals_backtest(tmp_path, monkeypatch) -> None:
    root = make_workspace(tmp_path, ["alts_mood.yaml"], days=45)
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(root))
    async with database(root):
        pass  # migrated
    import asyncio

    await asyncio.to_thread(store_generated_feeds, "2023-12-15", "2024-02-20", url=db_url(root))
    expected = await asyncio.to_thread(closed_backtest_trades, root, "alts_mood.yaml")
    assert len(expected) >= 3, "the sample should trade"
    async with database(root) as factory:
        runtime = make_runtime(root, factory)
        await runtime.run()
        live = await db_trades(factory)
    got = [(p, pd.Timestamp(o), pd.Timestamp(c), r) for _, p, _, o, c, _, _, _, r in live]
    assert got == trade_keys(expected)


async def test_without_feed_data_the_rules_never_enter(tmp_path, monkeypatch) -> None:
    root = make_workspace(tmp_path, ["alts_mood.yaml"], days=20)
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(root))
    async with database(root):
        pass
    import asyncio

    trades = await asyncio.to_thread(closed_backtest_trades, root, "alts_mood.yaml")
    # Nothing stored: fear_greed.value is NaN, so `fear_greed.value < fear` is false at every candle.
    assert trades.empty


async def test_feed_data_cut_at_t_changes_no_trade_before_t(tmp_path, monkeypatch) -> None:
    import asyncio

    full_root = make_workspace(tmp_path / "full", ["alts_mood.yaml"], days=45)
    cut_root = make_workspace(tmp_path / "cut", ["alts_mood.yaml"], days=45)
    for root, end in ((full_root, "2024-02-20"), (cut_root, "2024-02-05")):
        async with database(root):
            pass
        await asyncio.to_thread(store_generated_feeds, "2023-12-15", end, url=db_url(root))
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(full_root))
    full = await asyncio.to_thread(closed_backtest_trades, full_root, "alts_mood.yaml")
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(cut_root))
    cut = await asyncio.to_thread(closed_backtest_trades, cut_root, "alts_mood.yaml")
    t = pd.Timestamp("2024-02-05", tz="UTC")
    before = lambda trades: [row for row in trade_keys(trades) if row[2] < t]  # noqa: E731
    assert before(full) and before(full) == before(cut)
