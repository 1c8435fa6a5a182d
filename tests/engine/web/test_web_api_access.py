"""Authorization on every route (SECURITY.md 14-18): a VIEWER is refused every TRADER and ADMIN route,
a TRADER every ADMIN route; secrets stay out of responses and logs; user text comes back as text."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.store.enums import BotMode, PositionSide
from engine.store.models import ApiSecret, AuditEntry, Bot, BotCommand, Position
from engine.web.app import create_api

from .conftest import Web

BODIES = {
    ("POST", "/bots/"): {"name": "new-bot", "yaml": "bot: new-bot\n"},
    ("PUT", "/strategies/{name}"): {"text": "strategy: binance\n"},
    ("PATCH", "/bots/{bot_id}"): {"mode": "paper"},
    ("POST", "/positions/{position_id}/close"): {"confirm": True},
    ("PUT", "/config/risk"): {"max_open_trades": 3},
    ("POST", "/models/{name}/promote"): {"version": "v1"},
    ("PUT", "/config/secrets/{name}"): {"kind": "exchange", "value": "k" * 20},
    ("POST", "/users/"): {
        "username": "eve",
        "email": "eve@example.org",
        "password": "long enough pw",
        "role": "admin",
    },
    ("PATCH", "/users/{user_id}"): {"role": "admin"},
}
TRADER_ACTIONS = {
    ("POST", "/bots/{bot_id}/start"),
    ("POST", "/bots/{bot_id}/stop"),
    ("POST", "/positions/{position_id}/close"),
}


def _routes() -> list[tuple[str, str]]:
    # The OpenAPI document lists every HTTP route (FastAPI nests included routers in app.routes).
    spec = create_api(None).openapi()  # type: ignore[arg-type]  (only the route table is read)
    return [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if not path.startswith("/auth")
        for method in operations
    ]


ROUTES = _routes()
READS = [(m, p) for m, p in ROUTES if m == "GET" and not p.startswith("/users")]
WRITES = [r for r in ROUTES if r not in READS]


async def _seed(web: Web) -> dict[str, str]:
    async with web.ctx.sessions() as db, db.begin():
        bot = Bot(name="b1", config_hash="", mode=BotMode.PAPER)
        db.add(bot)
        await db.flush()
        db.add(
            Position(
                bot_id=bot.id,
                pair="BTC/USDT",
                side=PositionSide.LONG,
                amount=1,
                entry_price=100,
                opened_at=datetime.now(UTC),
            )
        )
    # `{name}` is "binance" in every path: a strategy file of that name for /strategies/{name}.
    example = Path(__file__).parents[3] / "strategies" / "ema_rsi.yaml"
    (web.ctx.strategies_dir / "binance.yaml").write_text(
        example.read_text(encoding="utf-8"), encoding="utf-8"
    )
    return {"bot_id": "1", "position_id": "1", "name": "binance", "user_id": "someone"}


async def _call(client, method: str, path: str, ids: dict[str, str]):
    url = path.format(**ids)
    return await client.request(method, url, json=BODIES.get((method, path)))


def test_route_table_is_what_the_brief_lists() -> None:
    paths = {p for _, p in ROUTES}
    for needed in (
        "/bots/",
        "/bots/{bot_id}/start",
        "/bots/{bot_id}/stop",
        "/bots/{bot_id}/status",
        "/trades/",
        "/performance/",
        "/config/",
        "/positions/",
        "/logs/",
        "/users/",
    ):
        assert needed in paths
    assert len(WRITES) >= 14


@pytest.mark.parametrize("role", ["viewer", "trader"])
async def test_lower_roles_are_refused_every_higher_route(web: Web, role: str) -> None:
    ids = await _seed(web)
    await web.add_user("low", role)
    client = await web.user_client("low")
    refused = WRITES if role == "viewer" else [r for r in WRITES if r not in TRADER_ACTIONS]
    for method, path in refused:
        r = await _call(client, method, path, ids)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
    for method, path in READS:
        r = await _call(client, method, path, ids)
        assert r.status_code == 200, (method, path, r.text)
    assert sorted(p.name for p in web.ctx.strategies_dir.iterdir()) == ["binance.yaml"]  # none deleted
    assert list(web.ctx.bots_dir.iterdir()) == []  # no bot file written
    async with web.ctx.sessions() as db:
        assert (await db.scalar(select(Bot).where(Bot.name == "new-bot"))) is None
        assert (await db.scalars(select(BotCommand))).all() == [] or role == "trader"
        audited = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "refused"))).all()
    assert len(audited) == len(refused)


async def test_no_route_answers_without_a_token(web: Web) -> None:
    ids = await _seed(web)
    for method, path in ROUTES:
        assert (await _call(web.client, method, path, ids)).status_code == 401, (method, path)


async def test_trader_queues_start_stop_and_a_confirmed_close(web: Web) -> None:
    ids = await _seed(web)
    await web.add_user("t", "trader")
    client = await web.user_client("t")
    assert (await client.post("/bots/1/start")).status_code == 202
    assert (await client.post("/bots/1/stop")).status_code == 202
    assert (await client.post("/positions/1/close", json={"confirm": False})).status_code == 400
    assert (await client.post("/positions/1/close", json={"confirm": True})).status_code == 202
    status_ = (await client.get("/bots/1/status")).json()
    assert [c["command"] for c in status_["pending_commands"]] == ["start", "stop", "close_position"]
    assert status_["pending_commands"][2]["position_id"] == int(ids["position_id"])


async def test_admin_bot_crud_and_user_text_is_returned_as_text(web: Web) -> None:
    await web.add_user("root", "admin")
    admin = await web.user_client("root")
    # A name that is no plain file name is refused; the message comes back as JSON text.
    refused = await admin.post("/bots/", json={"name": "<script>alert(1)</script>", "yaml": "bot: x\n"})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/json")
    root = Path(__file__).parents[3]
    strategy = (root / "strategies" / "ema_rsi.yaml").read_text(encoding="utf-8")
    (web.ctx.strategies_dir / "ema_rsi.yaml").write_text(strategy, encoding="utf-8")
    text = (root / "bots" / "eth_btc_trend.yaml").read_text(encoding="utf-8")
    text = text.replace("bot: eth-btc-trend", "bot: scripted")
    created = await admin.post("/bots/", json={"name": "scripted", "yaml": text})
    assert created.status_code == 201, created.text
    bot_id = created.json()["id"]
    assert (await admin.get(f"/bots/{bot_id}")).json()["name"] == "scripted"
    listed = (await admin.get("/bots/", params={"name": "script", "limit": 1})).json()
    assert listed["total"] == 1 and listed["items"][0]["name"] == "scripted"
    assert (await admin.patch(f"/bots/{bot_id}", json={"mode": "paper"})).json()["mode"] == "paper"
    assert (await admin.delete(f"/bots/{bot_id}")).status_code == 204
    assert (await admin.get(f"/bots/{bot_id}")).status_code == 404
    assert not (web.ctx.bots_dir / "scripted.yaml").exists()


async def test_api_keys_are_encrypted_masked_and_never_logged(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await web.add_user("root", "admin")
    admin = await web.user_client("root")
    key = "sk-live-0123456789abcdefSECRET"
    r = await admin.put("/config/secrets/openai", json={"kind": "openai", "value": key})
    assert r.status_code == 200 and r.json()["masked"] == "****CRET"
    config = await admin.get("/config/")
    assert key not in r.text and key not in config.text
    assert config.json()["secrets"][0]["masked"] == "****CRET"
    async with web.ctx.sessions() as db:
        row = await db.scalar(select(ApiSecret))
        assert key not in row.ciphertext and web.ctx.box.decrypt(row.ciphertext) == key
        audit = (await db.scalars(select(AuditEntry))).all()
    assert any(a.action == "secret.set" for a in audit)
    assert all(key not in repr((a.target, a.detail)) for a in audit)
    assert key not in caplog.text
    # No response anywhere carries a password hash or a TOTP secret.
    users = await admin.get("/users/")
    assert "argon2" not in users.text and "totp_secret" not in users.text
    assert web.secrets["root"] not in users.text


async def test_admin_revokes_sessions_and_resets_2fa(web: Web) -> None:
    await web.add_user("root", "admin")
    await web.add_user("v", "viewer")
    admin = await web.user_client("root")
    viewer = await web.user_client("v")
    user_id = next(u["id"] for u in (await admin.get("/users/")).json()["items"] if u["username"] == "v")
    assert len((await admin.get(f"/users/{user_id}/sessions")).json()) == 1
    assert (await admin.delete(f"/users/{user_id}/sessions")).json() == {"revoked": 1}
    assert (await viewer.get("/bots/")).status_code == 401
    assert (await admin.post(f"/users/{user_id}/reset-2fa")).json()["totp_enabled"] is False
    r = await web.client.post("/auth/login", json={"username": "v", "password": "correct horse battery"})
    assert r.json()["status"] == "2fa_setup_required"


async def test_list_filters_and_pagination_are_validated(web: Web) -> None:
    await web.add_user("v", "viewer")
    client = await web.user_client("v")
    assert (await client.get("/trades/", params={"limit": 0})).status_code == 422
    assert (await client.get("/trades/", params={"limit": 501})).status_code == 422
    assert (await client.get("/logs/", params={"category": "nope"})).status_code == 422
    assert (await client.get("/trades/", params={"since": "2026-01-01T00:00:00"})).status_code == 422
    page = (await client.get("/trades/", params={"since": "2026-01-01T00:00:00Z", "limit": 5})).json()
    assert page == {"items": [], "total": 0, "limit": 5, "offset": 0}


async def test_a_stored_key_is_scrubbed_from_later_log_lines(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.observability import redact_text

    await web.add_user("root", "admin")
    admin = await web.user_client("root")
    key = "binance-key-ZYXWVUTSRQ987654"
    assert (
        await admin.put("/config/secrets/binance", json={"kind": "exchange", "value": key})
    ).status_code == 200
    assert key not in redact_text(f"exchange said: bad key {key}")
