"""Orders first: at a candle close the bots whose signals may decide an order take the candle before
the others, whose decisions no longer delay those orders; the ledger is the same as without it."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from engine.runtime.commit import Committer
from tests.engine.runtime.conftest import make_workspace
from tests.engine.runtime.helpers import database, db_trades, make_runtime

pytestmark = pytest.mark.slow

BOTS = ["eth_btc_trend.yaml", "xrp_futures_breakout.yaml", "alts_reversion.yaml", "ltc_reversal.yaml"]


async def _ledger(factory) -> tuple[list[tuple], list[tuple]]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from engine.store.models import Bot, Order

    trades = await db_trades(factory)
    async with factory() as session:
        orders = await session.execute(
            select(Bot.name, Order.client_order_id, Order.pair, Order.side, Order.status, Order.amount)
            .join(Bot, Bot.id == Order.bot_id)
            .order_by(Order.client_order_id)
        )
        return trades, [tuple(r) for r in orders]


async def _run(root: Path, orders_first: bool, monkeypatch=None, stepwise: bool = False) -> tuple:  # type: ignore[no-untyped-def]
    """Replay the workspace; the ledger, and per candle close: when each bot took the candle and when
    the intent transactions holding that close's orders were written."""
    rounds: dict[int, dict] = {}
    steps: dict[int, int] = {}
    async with database(root) as factory:
        runtime = make_runtime(root, factory, end="2024-01-02 12:00", orders_first=orders_first)
        if monkeypatch is not None:
            flush = Committer._flush_urgent

            async def timed_flush(committer, batch):  # type: ignore[no-untyped-def]
                # Written when the caller learns it: its future is resolved right after the commit.
                for job, future in batch:
                    for row in getattr(job, "rows", ()):
                        bot = row["bot_id"]
                        close = int(pd.Timestamp(row["signal_time"]).as_unit("ns").value) + steps[bot]

                        def written(_future, close=close, bot=bot):  # type: ignore[no-untyped-def]
                            rounds[close].setdefault("intents", []).append((time.perf_counter(), bot))

                        future.add_done_callback(written)
                await flush(committer, batch)

            monkeypatch.setattr(Committer, "_flush_urgent", timed_flush)
        await runtime.start()
        for name in list(runtime.slots):
            runner = runtime.runner(name)
            steps[runner.bot_id] = runner.step_ns
            real = runner.on_batch

            async def on_batch(batch, received=None, _real=real, _runner=runner):  # type: ignore[no-untyped-def]
                at = time.perf_counter()
                rounds.setdefault(batch.close_time, {"starts": {}})["starts"][_runner.bot_id] = at
                return await _real(batch, received)

            runner.on_batch = on_batch  # type: ignore[method-assign]
            prepare = runner.prepare

            def prepared(batch, _prepare=prepare, _runner=runner):  # type: ignore[no-untyped-def]
                may_order = _prepare(batch)
                current = rounds.setdefault(batch.close_time, {"starts": {}})
                current.setdefault("eager" if may_order else "quiet", set()).add(_runner.bot_id)
                return may_order

            runner.prepare = prepared  # type: ignore[method-assign]
        if stepwise:  # each close's round ends before the next, as live where closes are minutes apart
            async for batch in runtime.feed.batches():
                await runtime.dispatch(batch)
                await runtime.settle()
        else:
            await runtime.pump()
        await runtime.stop()
        ledger = await _ledger(factory)
    return ledger, rounds


async def test_orders_first_trades_exactly_like_bots_taken_in_file_order(tmp_path: Path) -> None:
    first = make_workspace(tmp_path / "a", BOTS)
    plain = make_workspace(tmp_path / "b", BOTS)
    (trades_a, orders_a), _ = await _run(first, orders_first=True)
    (trades_b, orders_b), _ = await _run(plain, orders_first=False)
    assert trades_a and orders_a
    assert trades_a == trades_b
    assert orders_a == orders_b


async def test_intents_are_written_before_the_bots_without_signals_decide(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    root = make_workspace(tmp_path, BOTS)
    _, rounds = await _run(root, orders_first=True, monkeypatch=monkeypatch, stepwise=True)
    with_orders = [r for r in rounds.values() if r.get("intents")]
    assert with_orders
    waited = 0
    for r in with_orders:
        deciders = {bot for _, bot in r["intents"]}
        # Every bot deciding an order on this close took the candle before its intents were written
        # (a bot still busy with an earlier close takes it later, in the first group all the same).
        assert all(r["starts"][bot] < at for at, bot in r["intents"])
        # The bots whose signals could not decide an order took it only once the orders of the bots
        # that were ready for it had been written.
        quiet = r.get("quiet", set())
        assert not quiet & deciders
        ready = [at for at, bot in r["intents"] if bot in r.get("eager", set())]
        if ready:
            assert all(r["starts"][bot] > max(ready) for bot in quiet)
            waited += len(quiet)
    assert waited > 0
