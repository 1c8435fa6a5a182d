"""``/bots`` and ``/strategies`` write YAML files: validated first (422 with ``file:line:col`` messages),
written atomically, addressed by a plain name (no path traversal), audited, admins only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from engine.store.enums import BotMode, BotStatus, PositionSide
from engine.store.models import AuditEntry, Bot, Trade

from .conftest import Web

ROOT = Path(__file__).parents[3]
STRATEGY = (ROOT / "strategies" / "ema_rsi.yaml").read_text(encoding="utf-8")
BOT = (ROOT / "bots" / "eth_btc_trend.yaml").read_text(encoding="utf-8")


def bot_text(name: str) -> str:
    return BOT.replace("bot: eth-btc-trend", f"bot: {name}")


async def admin_of(web: Web) -> httpx.AsyncClient:
    (web.ctx.strategies_dir / "ema_rsi.yaml").write_text(STRATEGY, encoding="utf-8")
    await web.add_user("root", "admin")
    return await web.user_client("root")


async def actions(web: Web) -> list[tuple[str, str | None]]:
    async with web.ctx.sessions() as db:
        rows = (await db.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    return [(r.action, r.target) for r in rows if r.action.startswith(("bot.", "strategy."))]


# ---- strategies ------------------------------------------------------------------------------


async def test_strategies_list_read_and_rules_as_blocks(web: Web) -> None:
    admin = await admin_of(web)
    (web.ctx.bots_dir / "trend.yaml").write_text(bot_text("trend"), encoding="utf-8")
    listed = (await admin.get("/strategies/")).json()
    assert listed == [
        {
            "name": "ema_rsi",
            "file": "ema_rsi.yaml",
            "strategy": "ema_rsi",
            "description": "EMA crossover trend follower with an RSI filter and an ATR stop.",
            "timeframe": "5m",
            "used_by": ["trend.yaml"],
        }
    ]
    one = (await admin.get("/strategies/ema_rsi")).json()
    assert one["text"] == STRATEGY and one["diagnostics"] == []
    rules = {r["key"]: r for r in one["rules"]}
    assert rules["entry.long"]["text"] == "crosses_above(fast_ma, slow_ma) and momentum < rsi_max"
    assert rules["entry.long"]["block"]["kind"] == "group"
    assert rules["entry.long"]["block"]["items"][0]["kind"] == "cross"
    assert rules["features.fast_ma"]["block"]["kind"] == "indicator"
    assert "entry.short" not in rules
    assert (await admin.get("/strategies/missing")).status_code == 404


async def test_put_validates_writes_and_audits(web: Web) -> None:
    admin = await admin_of(web)
    path = web.ctx.strategies_dir / "ema_rsi.yaml"
    bad = STRATEGY.replace("crosses_below(fast_ma, slow_ma)", "crosses_below(fast_ma, slow_mb)")
    r = await admin.put("/strategies/ema_rsi", json={"text": bad})
    assert r.status_code == 422
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "slow_mb" in text)
    [message] = r.json()["detail"]
    assert message.startswith(f"strategies/ema_rsi.yaml:{line}:") and "slow_mb" in message
    assert path.read_text(encoding="utf-8") == STRATEGY  # untouched

    good = STRATEGY.replace("take_profit: 6%", "take_profit: 7%")
    r = await admin.put("/strategies/ema_rsi", json={"text": good})
    assert r.status_code == 200, r.text
    assert path.read_text(encoding="utf-8") == good  # comments and all, as sent
    r = await admin.put("/strategies/copy", json={"text": good})
    assert r.status_code == 201 and (web.ctx.strategies_dir / "copy.yaml").read_text(encoding="utf-8") == good
    # A bot file is not a strategy.
    r = await admin.put("/strategies/other", json={"text": bot_text("x")})
    assert r.status_code == 422 and "expected a strategy file" in r.json()["detail"][0]
    assert not (web.ctx.strategies_dir / "other.yaml").exists()
    assert await actions(web) == [
        ("strategy.write", "strategy:ema_rsi"),
        ("strategy.create", "strategy:copy"),
    ]


async def test_put_refuses_a_change_that_breaks_a_bot_and_delete_refuses_a_used_strategy(web: Web) -> None:
    admin = await admin_of(web)
    (web.ctx.bots_dir / "trend.yaml").write_text(bot_text("trend"), encoding="utf-8")  # params: fast, rsi_max
    renamed = STRATEGY.replace("rsi_max:", "rsi_top:").replace("< rsi_max", "< rsi_top")
    r = await admin.put("/strategies/ema_rsi", json={"text": renamed})
    assert r.status_code == 422
    assert any("trend.yaml" in m and "rsi_max" in m for m in r.json()["detail"])
    r = await admin.delete("/strategies/ema_rsi")
    assert r.status_code == 409 and "trend.yaml" in r.json()["detail"]
    assert (web.ctx.strategies_dir / "ema_rsi.yaml").exists()
    (web.ctx.bots_dir / "trend.yaml").unlink()
    assert (await admin.delete("/strategies/ema_rsi")).status_code == 204
    assert not (web.ctx.strategies_dir / "ema_rsi.yaml").exists()
    assert await actions(web) == [("strategy.delete", "strategy:ema_rsi")]


@pytest.mark.parametrize(
    "name", ["..%2Fx", "..", ".hidden", "%2Fetc%2Fpasswd", "a%00b", "a%5Cb", "x%0A", "a" * 65]
)
async def test_names_that_are_not_plain_file_names_are_refused(web: Web, tmp_path: Path, name: str) -> None:
    admin = await admin_of(web)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.suffix == ".yaml")
    r = await admin.put(f"/strategies/{name}", json={"text": STRATEGY})
    assert r.status_code in (404, 422), (name, r.status_code)  # 404: the router found no such path
    assert r.status_code == 404 or "invalid name" in r.text or "at most 64" in r.text
    assert (await admin.delete(f"/strategies/{name}")).status_code in (404, 422)
    assert (await admin.get(f"/strategies/{name}")).status_code in (404, 422)
    decoded = name.replace("%2F", "/").replace("%00", "\0").replace("%5C", "\\").replace("%0A", "\n")
    r = await admin.post("/bots/", json={"name": decoded, "yaml": bot_text(decoded)})
    assert r.status_code == 422
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.suffix == ".yaml")
    assert after == before
    assert not (tmp_path.parent / "x.yaml").exists()


async def test_trader_and_viewer_cannot_write_files(web: Web) -> None:
    await admin_of(web)
    (web.ctx.bots_dir / "trend.yaml").write_text(bot_text("trend"), encoding="utf-8")
    for role in ("viewer", "trader"):
        await web.add_user(role, role)
        client = await web.user_client(role)
        assert (await client.get("/strategies/ema_rsi")).status_code == 200
        assert (await client.put("/strategies/ema_rsi", json={"text": STRATEGY})).status_code == 403
        assert (await client.put("/strategies/new", json={"text": STRATEGY})).status_code == 403
        assert (await client.delete("/strategies/ema_rsi")).status_code == 403
        assert (await client.post("/bots/", json={"name": "b", "yaml": bot_text("b")})).status_code == 403
    assert sorted(p.name for p in web.ctx.strategies_dir.iterdir()) == ["ema_rsi.yaml"]
    assert sorted(p.name for p in web.ctx.bots_dir.iterdir()) == ["trend.yaml"]
    assert await actions(web) == []


# ---- bots ------------------------------------------------------------------------------------


async def test_bot_create_validates_and_writes_the_file(web: Web) -> None:
    admin = await admin_of(web)
    bad = bot_text("alpha").replace("  fast: 9\n", "  fast: 90\n")  # outside the input's range
    r = await admin.post("/bots/", json={"name": "alpha", "yaml": bad})
    assert r.status_code == 422
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "fast: 90" in text)
    assert r.json()["detail"] == [
        f"bots/alpha.yaml:{line}:9: error[CFG008]: params.fast: 90 is outside the range [5, 30] of input 'fast'"
    ]
    r = await admin.post("/bots/", json={"name": "alpha", "yaml": bot_text("beta")})
    assert r.status_code == 422 and "must be equal" in r.json()["detail"][0]
    assert list(web.ctx.bots_dir.iterdir()) == []

    r = await admin.post("/bots/", json={"name": "alpha", "yaml": bot_text("alpha"), "account": "main"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["mode"] == "paper" and body["status"] == "stopped" and body["account"] == "main"
    path = web.ctx.bots_dir / "alpha.yaml"
    assert path.read_text(encoding="utf-8") == bot_text("alpha")
    assert body["config_path"] == str(path)
    assert (await admin.post("/bots/", json={"name": "alpha", "yaml": bot_text("alpha")})).status_code == 409
    # A file of another name that already runs a bot called "gamma": a second one is refused.
    (web.ctx.bots_dir / "other_file.yaml").write_text(bot_text("gamma"), encoding="utf-8")
    assert (await admin.post("/bots/", json={"name": "gamma", "yaml": bot_text("gamma")})).status_code == 409
    assert await actions(web) == [("bot.create", f"bot:{body['id']}")]


async def test_bot_patch_rewrites_the_file_keeping_comments(web: Web) -> None:
    admin = await admin_of(web)
    bot_id = (await admin.post("/bots/", json={"name": "alpha", "yaml": bot_text("alpha")})).json()["id"]
    path = web.ctx.bots_dir / "alpha.yaml"
    r = await admin.patch(f"/bots/{bot_id}", json={"mode": "backtest"})
    assert r.status_code == 422  # not a mode the API offers
    changed = bot_text("alpha").replace("max_open_trades: 2", "max_open_trades: 3")
    r = await admin.patch(f"/bots/{bot_id}", json={"yaml": changed})
    assert r.status_code == 200, r.text
    assert path.read_text(encoding="utf-8") == changed
    r = await admin.patch(f"/bots/{bot_id}", json={"yaml": changed.replace("bot: alpha", "bot: other")})
    assert r.status_code == 422 and path.read_text(encoding="utf-8") == changed
    r = await admin.patch(f"/bots/{bot_id}", json={"yaml": changed.replace("pairs: [", "pairs: [[")})
    assert r.status_code == 422 and path.read_text(encoding="utf-8") == changed
    r = await admin.patch(f"/bots/{bot_id}", json={"mode": "live"})  # live needs credentials
    assert r.status_code == 422 and path.read_text(encoding="utf-8") == changed
    r = await admin.patch(f"/bots/{bot_id}", json={"account": "spare"})
    assert r.status_code == 200 and r.json()["account"] == "spare"
    edits = [("bot.edit", f"bot:{bot_id}")] * 2
    assert await actions(web) == [("bot.create", f"bot:{bot_id}"), *edits]


async def test_bot_patch_mode_sets_exchange_mode_in_place(web: Web) -> None:
    admin = await admin_of(web)
    text = bot_text("alpha").replace(
        "  mode: paper\n",
        "  mode: paper\n  credentials: {key: env:K, secret: env:S}\n",
    )
    bot_id = (await admin.post("/bots/", json={"name": "alpha", "yaml": text})).json()["id"]
    r = await admin.patch(f"/bots/{bot_id}", json={"mode": "testnet"})
    assert r.status_code == 200, r.text
    assert r.json()["mode"] == "testnet"
    written = (web.ctx.bots_dir / "alpha.yaml").read_text(encoding="utf-8")
    assert written == text.replace("  mode: paper\n", "  mode: testnet\n", 1)


async def test_bot_delete_removes_the_file_and_keeps_history(web: Web) -> None:
    admin = await admin_of(web)
    bot_id = (await admin.post("/bots/", json={"name": "alpha", "yaml": bot_text("alpha")})).json()["id"]
    other = (await admin.post("/bots/", json={"name": "beta", "yaml": bot_text("beta")})).json()["id"]
    async with web.ctx.sessions() as db, db.begin():
        db.add(
            Trade(
                bot_id=other,
                pair="ETH/BTC",
                side=PositionSide.LONG,
                open_time=datetime(2026, 1, 1, tzinfo=UTC),
                close_time=datetime(2026, 1, 2, tzinfo=UTC),
                open_price=1,
                close_price=1,
                amount=1,
                profit_ratio=0.0,
                profit_abs=0,
                fees=0,
                exit_reason="exit_signal",
            )
        )
        running = Bot(name="runner", config_hash="", mode=BotMode.PAPER, status=BotStatus.RUNNING)
        db.add(running)
        await db.flush()
        running_id = running.id
    (web.ctx.bots_dir / "runner.yaml").write_text(bot_text("runner"), encoding="utf-8")

    assert (await admin.delete(f"/bots/{bot_id}")).status_code == 204
    assert not (web.ctx.bots_dir / "alpha.yaml").exists()
    assert (await admin.get(f"/bots/{bot_id}")).status_code == 404
    # History: the file goes, the row stays readable.
    assert (await admin.delete(f"/bots/{other}")).status_code == 204
    assert not (web.ctx.bots_dir / "beta.yaml").exists()
    assert (await admin.get(f"/bots/{other}")).status_code == 200
    # Running: the file goes (hot reload stops it), the row stays.
    assert (await admin.delete(f"/bots/{running_id}")).status_code == 204
    assert not (web.ctx.bots_dir / "runner.yaml").exists()
    assert (await admin.get(f"/bots/{running_id}")).status_code == 200
    # No file left: a running bot or one with history is refused as before.
    assert (await admin.delete(f"/bots/{running_id}")).status_code == 409
    assert (await admin.delete(f"/bots/{other}")).status_code == 409
    assert [a for a, _ in await actions(web)].count("bot.delete") == 3
