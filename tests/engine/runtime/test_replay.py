"""The live path on a replay equals the backtest; engine status reads what it stored."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.engine.runtime.helpers import database, db_trades, db_url, make_runtime

pytestmark = pytest.mark.slow


def _backtest_trades(root, file: str) -> list[tuple]:
    from engine.backtest.session import run_bot_backtest

    run = run_bot_backtest(root / "bots" / file, data_dir=root / "data")
    trades = run.result.trades
    trades = trades[trades["exit_reason"] != "end_of_data"]
    name = run.bot.model.bot
    return [
        (
            name,
            r.pair,
            r.side,
            pd.Timestamp(r.open_time),
            pd.Timestamp(r.close_time),
            r.open_price,
            r.close_price,
            r.amount,
            r.exit_reason,
        )
        for r in trades.itertuples()
    ]


async def test_replay_of_two_bots_trades_like_the_backtest(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory)
        await runtime.run()
        live = await db_trades(factory)
    expected = sorted(
        _backtest_trades(workspace, "eth_btc_trend.yaml")
        + _backtest_trades(workspace, "xrp_futures_breakout.yaml"),
        key=lambda t: (t[0], t[4]),
    )
    assert len(expected) >= 4, "the sample should trade"
    got = [
        (n, p, s.value, pd.Timestamp(o), pd.Timestamp(c), float(op), float(cp), float(a), r)
        for n, p, s, o, c, op, cp, a, r in live
    ]
    assert [(*t[:5], t[8]) for t in got] == [(*t[:5], t[8]) for t in expected]
    for g, e in zip(got, expected, strict=True):
        assert g[5:8] == pytest.approx(e[5:8], rel=1e-12)

    # engine status, from the database the run left behind
    from engine.cli import _register, app

    _register()
    # (in a thread: the command runs its own event loop)
    result = await asyncio.to_thread(CliRunner().invoke, app, ["status", "--url", db_url(workspace)])
    assert result.exit_code == 0, result.output
    assert "eth-btc-trend" in result.output and "xrp-futures-breakout" in result.output
    assert "stopped" in result.output


async def test_bots_sharing_a_strategy_share_its_signals_and_still_trade_like_the_backtest(workspace):
    (workspace / "bots" / "xrp_futures_breakout.yaml").unlink()
    original = workspace / "bots" / "eth_btc_trend.yaml"
    twin = workspace / "bots" / "twin.yaml"
    twin.write_text(original.read_text().replace("bot: eth-btc-trend", "bot: twin"))
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory)
        await runtime.run()
        live = await db_trades(factory)
    assert runtime.shared.hits == runtime.shared.misses  # the second bot never computed
    expected = _backtest_trades(workspace, "eth_btc_trend.yaml")
    for name in ("eth-btc-trend", "twin"):
        got = [
            (p, s.value, pd.Timestamp(o), pd.Timestamp(c), r) for n, p, s, o, c, *_, r in live if n == name
        ]
        assert got == [(p, s, o, c, r) for _, p, s, o, c, *_, r in expected]


async def test_a_strategy_s_size_gives_the_same_amounts_in_the_replay_as_in_the_backtest(workspace):
    (workspace / "bots" / "xrp_futures_breakout.yaml").unlink()
    strategy = workspace / "strategies" / "ema_rsi.yaml"
    unsized = _backtest_trades(workspace, "eth_btc_trend.yaml")
    # From no entry (momentum 40 or below) to the full stake (70 and above, clipped).
    strategy.write_text(strategy.read_text() + "\nsize: (momentum - 40) / 30\n")
    expected = _backtest_trades(workspace, "eth_btc_trend.yaml")
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory)
        await runtime.run()
        live = await db_trades(factory)
    assert len(expected) >= 2, "the sample should trade"
    got = [
        (n, p, s.value, pd.Timestamp(o), pd.Timestamp(c), float(op), float(cp), float(a), r)
        for n, p, s, o, c, op, cp, a, r in live
    ]
    assert [(*t[:5], t[8]) for t in got] == [(*t[:5], t[8]) for t in expected]
    for g, e in zip(got, expected, strict=True):
        assert g[5:8] == pytest.approx(e[5:8], rel=1e-12)
    assert [t[7] for t in expected] != [t[7] for t in unsized]  # the size changed the amounts
