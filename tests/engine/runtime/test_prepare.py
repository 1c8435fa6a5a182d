"""prepare(): a bot's signals computed ahead of its candle. Signals shared from another bot leave the
candle out of the bot's window until it takes the candle; a reload staged between the two judges the
candle by the new rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.runtime import load_bots
from engine.trading import layout as L
from tests.engine.runtime.conftest import make_workspace
from tests.engine.runtime.helpers import database, make_runtime

pytestmark = pytest.mark.slow

ORIGINAL = "long: crosses_above(fast_ma, slow_ma) and momentum < rsi_max"
NEVER = "long: crosses_above(fast_ma, slow_ma) and momentum < 0"


def _with_twin(root: Path) -> Path:
    make_workspace(root, ["eth_btc_trend.yaml"], days=2)
    source = root / "bots" / "eth_btc_trend.yaml"
    (root / "bots" / "twin.yaml").write_text(source.read_text().replace("bot: eth-btc-trend", "bot: twin"))
    return root


def _pending_entries(runner) -> dict[str, int]:  # type: ignore[no-untyped-def]
    pending = runner.trader.state.pos_i[:, L.Q_PEND_ENTRY]
    return {pair: int(pending[k]) for k, pair in enumerate(runner.pairs) if pending[k]}


async def test_shared_signals_leave_identical_windows(tmp_path: Path) -> None:
    root = _with_twin(tmp_path)
    async with database(root) as factory:
        runtime = make_runtime(root, factory, end="2024-01-01 18:00", orders_first=True)
        await runtime.start()
        first, twin = runtime.runner("eth-btc-trend"), runtime.runner("twin")
        deferred = 0
        async for batch in runtime.feed.batches():
            await runtime.dispatch(batch)
            prepared = twin._prepared
            deferred += len(prepared.deferred) if prepared is not None else 0
            await runtime.settle()
        await runtime.stop()
    assert deferred > 0, "the twin took the first bot's signals and deferred its appends"
    assert runtime.shared.hits > 0
    for pair in first.pairs:
        a, b = first.signals.frame(pair), twin.signals.frame(pair)
        assert len(a) > 100
        assert a.equals(b)
    assert first.trader.trades().equals(twin.trader.trades())


async def test_a_reload_staged_after_prepare_judges_the_candle_by_the_new_rules(tmp_path: Path) -> None:
    root = _with_twin(tmp_path)
    # The new rules of eth-btc-trend, loaded from a copy: they never enter long.
    other = tmp_path / "never"
    shutil.copytree(root / "bots", other / "bots")
    shutil.copytree(root / "strategies", other / "strategies")
    strategy = other / "strategies" / "ema_rsi.yaml"
    assert ORIGINAL in strategy.read_text()
    strategy.write_text(strategy.read_text().replace(ORIGINAL, NEVER))
    never = load_bots(other / "bots").bots["eth-btc-trend"]

    async with database(root) as factory:
        runtime = make_runtime(root, factory, end="2024-01-02 12:00", orders_first=True)
        await runtime.start()
        bot, twin = runtime.runner("eth-btc-trend"), runtime.runner("twin")
        staged_at: list[tuple[int, str]] = []
        real = bot.prepare

        def prepare(batch, _real=real):  # type: ignore[no-untyped-def]
            may_order = _real(batch)
            prepared = bot._prepared
            if not staged_at and prepared is not None:
                for pair, (_, signals) in prepared.signals.items():
                    if signals.entry_long and bot.trader.position(pair) is None:
                        bot.replace(never)  # the watcher staged the edit right after prepare()
                        staged_at.append((batch.close_time, pair))
                        break
            return may_order

        bot.prepare = prepare  # type: ignore[method-assign]
        async for batch in runtime.feed.batches():
            await runtime.dispatch(batch)
            await runtime.settle()
            if staged_at:
                break
        await runtime.stop()
    assert staged_at, "the old rules never signalled an entry on this data"
    _, pair = staged_at[0]
    assert NEVER in bot.loaded.strategy.text
    assert pair in _pending_entries(twin), "the twin, on the old rules, decided the entry"
    assert pair not in _pending_entries(bot), "the new rules judged the candle: no entry"
    assert not np.any(bot.trader.state.pos_i[:, L.Q_PEND_ENTRY] > 0)
