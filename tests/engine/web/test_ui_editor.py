"""The strategy editor page (NiceGUI simulated user): blocks and text in step, errors with columns,
save through EditableFile (comments kept), refused for a viewer, backtest on stored synthetic data."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from nicegui import ui
from nicegui.testing.user import User
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy import select, update

from engine.store.models import AuditEntry
from engine.store.models import User as Account
from engine.web.pages import register_pages

from .conftest import Web
from .ui_helpers import require_sqlite, sign_in

ROOT = Path(__file__).parents[3]
STRATEGY = (ROOT / "strategies" / "ema_rsi.yaml").read_text(encoding="utf-8")
BOT = (ROOT / "bots" / "eth_btc_trend.yaml").read_text(encoding="utf-8")


def setup_files(web: Web) -> Path:
    path = web.ctx.strategies_dir / "ema_rsi.yaml"
    path.write_text(STRATEGY, encoding="utf-8")
    (web.ctx.bots_dir / "trend.yaml").write_text(BOT, encoding="utf-8")
    return path


def one(user: User, marker: str) -> ui.element:
    [element] = user.find(marker=marker).elements
    return element


async def test_blocks_text_errors_and_save(web: Web) -> None:
    require_sqlite(web)
    path = setup_files(web)
    await web.add_user("ada", "admin")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "ada")
        await user.open("/editor")
        await user.should_see("ema_rsi")
        await user.should_see("used by trend.yaml")
        await user.open("/editor/ema_rsi")
        await user.should_see("entry.long")

        # A block parameter changes the text at once.
        momentum = one(user, "rule-text-features-momentum")
        assert momentum.value == "rsi(close, 14)"
        with user.scope(marker="blocks-features-momentum"):
            user.find(marker="block-number").clear().type("21")
        assert momentum.value == "rsi(close, 21)"
        assert one(user, "rule-error-features-momentum").text == ""

        # An invalid rule: the error with its column; Save refuses; the file is untouched.
        entry = one(user, "rule-text-entry-long")
        user.find(marker="rule-text-entry-long").clear().type("close > emaa(close, 10)")
        error = one(user, "rule-error-entry-long").text
        assert "line 1, column 9: unknown function 'emaa'" in error
        assert "        ^^^^" in error  # the caret under the name
        user.find(marker="save").click()
        await user.should_see("not saved: fix entry.long first", retries=20)
        assert path.read_text(encoding="utf-8") == STRATEGY

        # A block left empty: said so, and Save waits for it.
        with user.scope(marker="blocks-features-momentum"):
            user.find(marker="block-number").clear()
        assert one(user, "rule-error-features-momentum").text.startswith("incomplete block")
        user.find(marker="rule-text-features-momentum").clear().type("rsi(close, 21)")
        assert one(user, "rule-error-features-momentum").text == ""

        # A valid text rebuilds the blocks (a group of a cross and a comparison).
        user.find(marker="rule-text-entry-long").clear().type(
            "crosses_above(fast_ma, slow_ma) and momentum < 60"
        )
        assert one(user, "rule-error-entry-long").text == ""
        with user.scope(marker="blocks-entry-long"):
            ops = [e.value for e in user.find(marker="block-op").elements]
        assert sorted(ops) == ["<", "crosses above"]
        # ...and a block edit on them rewrites the text.
        with user.scope(marker="blocks-entry-long"):
            user.find(marker="block-number").clear().type("65")
        assert entry.value == "crosses_above(fast_ma, slow_ma) and momentum < 65"

        user.find(marker="stop-take_profit").clear().type("7%")
        user.find(marker="save").click()
        await user.should_see("saved ema_rsi.yaml", retries=100)
        saved = path.read_text(encoding="utf-8")
        assert "  long: crosses_above(fast_ma, slow_ma) and momentum < 65\n" in saved
        assert "  momentum: rsi(close, 21)\n" in saved
        assert "take_profit: 7%" in saved
        # Comments and the rest of the file as they were.
        assert (
            saved.replace("momentum < 65", "momentum < rsi_max")
            .replace("rsi(close, 21)", "rsi(close, 14)")
            .replace("7%", "6%")
            == STRATEGY
        )
        async with web.ctx.sessions() as db:
            audited = (
                await db.scalars(select(AuditEntry.action).where(AuditEntry.action == "strategy.write"))
            ).all()
        assert audited == ["strategy.write"]

        # The role changes while the page is open: the Save button is there, the server refuses.
        async with web.ctx.sessions() as db, db.begin():
            await db.execute(update(Account).where(Account.username == "ada").values(role="viewer"))
        user.find(marker="rule-text-entry-long").clear().type("crosses_above(fast_ma, slow_ma)")
        user.find(marker="save").click()
        await user.should_see("not allowed for role viewer", retries=20)
        assert path.read_text(encoding="utf-8") == saved


async def test_viewer_sees_a_read_only_editor(web: Web) -> None:
    require_sqlite(web)
    setup_files(web)
    (web.ctx.strategies_dir / "x.yaml").write_text(
        STRATEGY.replace("description: EMA", "description: <b onmouseover=alert(1)>EMA"), encoding="utf-8"
    )
    await web.add_user("vic", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vic")
        await user.open("/editor")
        await user.should_see("<b onmouseover=alert(1)>EMA crossover trend follower")  # as text
        await user.open("/editor/ema_rsi")
        await user.should_see("Read-only")
        await user.should_not_see(marker="save")
        await user.open("/editor/.trend")  # not a plain file name: never looked up
        await user.should_see("invalid name")
        await user.open("/editor/a%00b")
        await user.should_see("invalid name")
        await user.open("/editor/missing")
        await user.should_see("No strategy named missing.")


async def test_backtest_button_on_stored_synthetic_data(
    web: Web, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_sqlite(web)
    setup_files(web)
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    await web.add_user("ada", "admin")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "ada")
        await user.open("/editor/ema_rsi")
        assert one(user, "backtest-bot").value == "trend.yaml"
        user.find(marker="backtest").click()
        # Said once, with what an admin runs (not the store's file path, not once per pair).
        status = one(user, "backtest-status")
        for _ in range(100):
            if status.text.startswith("cannot run"):
                break
            await asyncio.sleep(0.05)
        assert status.text == (
            "cannot run: No 5m candles of ETH/BTC,LTC/BTC (binance) in the candle store. An admin can fetch "
            "them on the server with: engine data download -e binance --pairs ETH/BTC,LTC/BTC --timeframe 5m"
        )
        await user.should_not_see(marker="backtest-equity")  # no empty chart before a backtest ran

        from engine.data.store import CandleStore
        from engine.data.synth import synth_candles

        store = CandleStore(tmp_path / "home" / "data")
        for pair in ("ETH/BTC", "LTC/BTC"):
            candles = synth_candles(pair, "5m", "2026-01-01", periods=6 * 288, seed=7)
            store.save("binance", pair, "5m", candles, source="synth", synthetic=True)
        user.find(marker="backtest").click()
        await user.should_see("(synthetic data)", retries=100)
        chart = one(user, "backtest-equity")
        assert len(chart.options["series"][0]["data"]) > 100
        status = one(user, "backtest-status").text
        trades = one(user, "backtest-trades").rows
        assert f"{len(trades)} trades" in status
        assert trades and {"pair", "side", "profit_abs", "profit_pct", "exit_reason"} <= set(trades[0])
        assert trades[0]["profit_abs"].endswith(" BTC") and trades[0]["profit_pct"].endswith(" %")


async def test_every_example_strategy_opens_with_valid_rules(web: Web) -> None:
    require_sqlite(web)
    examples = sorted((ROOT / "strategies").glob("*.yaml"))
    for example in examples:
        (web.ctx.strategies_dir / example.name).write_text(
            example.read_text(encoding="utf-8"), encoding="utf-8"
        )
    # The files the example rules read beside them (ml.* needs models/, feed names need feeds.yaml).
    project = web.ctx.strategies_dir.parent
    if not (project / "models").exists():
        shutil.copytree(ROOT / "models", project / "models")
    if (ROOT / "feeds.yaml").exists() and not (project / "feeds.yaml").exists():
        shutil.copy(ROOT / "feeds.yaml", project / "feeds.yaml")
    await web.add_user("ada", "admin")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "ada")
        for example in examples:
            await user.open(f"/editor/{example.stem}")
            await user.should_see("entry.long")
            errors = [e.text for e in user.find(ui.label).elements if "rule-error" in " ".join(e._markers)]
            texts = [e.value for e in user.find(ui.textarea).elements]
            assert errors and all(text == "" for text in errors), (example.name, errors)
            assert any(texts), example.name
