"""Feed health in the web app (issue 11): ``GET /feeds/status`` for every signed-in role, and the
``/feeds`` page (NiceGUI simulated user). What they show comes from the store: observations and
source health written by a real FeedService run against a local server speaking alternative.me's
format, and rows the tests insert. Remote error text is shown as text and masked for keys."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from nicegui import ui
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy import update

from engine.config._feeds import load_feeds
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.service import FeedService
from engine.feeds.store import save_health, write_observations
from engine.observability import register_secret
from engine.store.models import ApiSecret, FeedHealth
from engine.web.feed_lines import ERROR_CHARS, FeedLine, SourceLine
from engine.web.pages import register_pages
from engine.web.ui.feeds import EMPTY, feed_cells, source_cells
from tests.fakes.json_service import JsonService

from .conftest import Web
from .ui_helpers import filled_table, require_sqlite, run_timers, sign_in

RETRIES = 50
EVIL = "<script>alert('feed')</script><img src=x onerror=alert(1)>"
DAY = 86_400
START = 1_704_067_200  # 2024-01-01


def _fng(query: dict[str, str]) -> tuple[int, dict[str, str], object]:
    days = [
        {"value": str(20 + i), "value_classification": "Fear", "timestamp": str(START + i * DAY)}
        for i in reversed(range(10))
    ]
    limit = int(query.get("limit", "1"))
    return 200, {}, {"name": "Fear and Greed Index", "data": days if limit == 0 else days[:limit]}


async def _fear_greed_then_failing(web: Web) -> None:
    """A real refresh through the feed HTTP client: ten days stored, then a 500 whose body is markup."""
    root = web.ctx.bots_dir.parent
    with JsonService({"/fng/": _fng}) as server:
        service = FeedService(
            load_feeds(root),
            web.ctx.sessions,
            root=root,
            base_urls={"fear_greed": server.url},
            clock=lambda: (START + 10 * DAY) * NS_PER_SECOND,
            retries=0,
            backoff=0.01,
        )
        try:
            assert (await service.refresh("fear_greed", backfill=True)).added == 10
            server.fail("/fng/", 500, body=EVIL)
            await service.refresh("fear_greed")
        finally:
            await service.aclose()


async def _insert(web: Web, *, secret: str) -> None:
    now = time.time_ns()
    hour = 3600 * NS_PER_SECOND
    async with web.ctx.sessions() as db, db.begin():
        await write_observations(
            db,
            [Observation("btc.price", now - 2 * hour, now - hour, 43_000.0, "coingecko")]
            + [
                Observation("spx.close", e, e + hour, 4_700.0 + i, "generated")
                for i, e in enumerate(START * NS_PER_SECOND + d * DAY * NS_PER_SECOND for d in range(3))
            ],
        )
        await save_health(db, "coingecko", ok=True, calls=7)
        await save_health(
            db,
            "cryptocompare",
            ok=False,
            calls=3,
            error=f"HTTP 401 (key {secret} refused; api_key=abcdef0123456789 Authorization: Bearer tok123456)",
        )
        # Failing since two hours: down.
        await db.execute(
            update(FeedHealth)
            .where(FeedHealth.source == "cryptocompare")
            .values(state="down", down_since=datetime.now(UTC) - timedelta(hours=2))
        )


# ---- API ------------------------------------------------------------------------------------------


async def test_feeds_status_needs_a_sign_in_and_a_viewer_may_read_it(web: Web) -> None:
    assert (await web.client.get("/feeds/status")).status_code == 401
    bad = await web.client.get("/feeds/status", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    await web.add_user("vera", "viewer")
    viewer = await web.user_client("vera")
    answer = await viewer.get("/feeds/status")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # Nothing fetched yet: the built-in feeds, all empty; their sources listed as not called.
    assert {f["name"]: f["state"] for f in body["feeds"]} == {
        "btc": "empty",
        "eth": "empty",
        "fear_greed": "empty",
        "spx": "empty",
    }
    assert {s["name"]: s["state"] for s in body["sources"]} == {
        k: "not called" for k in ("coingecko", "cryptocompare", "fear_greed", "yahoo")
    }
    assert body["config"] is None and body["problems"] == []
    await viewer.aclose()


async def test_feeds_status_reflects_the_store(web: Web) -> None:
    secret = "cc-" + secrets.token_hex(12)
    register_secret(secret)  # as the configuration does when it resolves a key
    await _fear_greed_then_failing(web)
    await _insert(web, secret=secret)
    await web.add_user("vera", "viewer")
    viewer = await web.user_client("vera")
    answer = await viewer.get("/feeds/status")
    assert answer.status_code == 200, answer.text
    text = answer.text
    body = answer.json()
    feeds = {f["name"]: f for f in body["feeds"]}
    assert feeds["btc"]["state"] == "fresh"
    assert feeds["btc"]["sources"] == ["coingecko", "cryptocompare"]  # fallback order
    assert "dominance" in feeds["btc"]["members"]
    assert feeds["btc"]["observations"] == 1 and feeds["btc"]["stored_from"] == ["coingecko"]
    assert 3500 < feeds["btc"]["age_s"] < 3700 and feeds["btc"]["max_age_s"] == 7200
    assert not feeds["btc"]["generated"]
    assert feeds["spx"]["state"] == "stale" and feeds["spx"]["generated"]
    assert feeds["spx"]["stored_from"] == ["generated"] and feeds["spx"]["observations"] == 3
    assert feeds["fear_greed"]["observations"] == 10 and feeds["fear_greed"]["state"] == "stale"
    assert feeds["fear_greed"]["last_known"].startswith("2024-01-10T00:10:00")  # the newest available_at
    assert feeds["eth"]["state"] == "empty" and feeds["eth"]["last_known"] is None

    sources = {s["name"]: s for s in body["sources"]}
    fng = sources["fear_greed"]
    assert fng["state"] == "degraded" and fng["failures"] == 1 and fng["calls"] >= 2
    assert fng["last_success"] is not None and fng["last_error_at"] is not None
    assert "HTTP 500" in fng["last_error"] and "<script>" in fng["last_error"]  # JSON text, as stored
    assert fng["calls_per_minute"] == 30
    down = sources["cryptocompare"]
    assert down["state"] == "down" and down["down_since"] is not None and down["calls"] == 3
    assert sources["coingecko"] == {
        **sources["coingecko"],
        "state": "ok",
        "calls": 7,
        "failures": 0,
        "last_error": None,
    }
    assert sources["yahoo"]["state"] == "not called"
    # A key in a stored error is masked again on the way out, and credential patterns too.
    assert secret not in text and "abcdef0123456789" not in text and "tok123456" not in text
    assert "***" in down["last_error"]
    await viewer.aclose()


async def test_feeds_status_reads_the_projects_feeds_yaml(web: Web) -> None:
    root = web.ctx.bots_dir.parent
    (root / "feeds.yaml").write_text(
        "services:\n  coingecko: {calls_per_minute: 12}\n"
        "feeds:\n  dxy: {source: yahoo, symbol: DX-Y.NYB, max_age: 4d}\n"
    )
    await web.add_user("vera", "viewer")
    viewer = await web.user_client("vera")
    body = (await viewer.get("/feeds/status")).json()
    assert body["config"] == "feeds.yaml" and body["problems"] == []
    dxy = next(f for f in body["feeds"] if f["name"] == "dxy")
    assert dxy["sources"] == ["yahoo"] and dxy["max_age_s"] == 4 * DAY
    assert next(s for s in body["sources"] if s["name"] == "coingecko")["calls_per_minute"] == 12
    # A broken file: its errors at file:line:col, and the built-in feeds only.
    (root / "feeds.yaml").write_text("feeds:\n  dxy: {source: yahooo}\n")
    body = (await viewer.get("/feeds/status")).json()
    assert body["problems"] and body["problems"][0].startswith("feeds.yaml:2:")
    assert "dxy" not in {f["name"] for f in body["feeds"]}
    await viewer.aclose()


async def test_keys_named_in_feeds_yaml_are_masked_even_if_stored_in_an_error(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored error should never hold a key (the feed client masks it); if one did, the keys the
    project's feeds.yaml names are masked on the way out all the same, env: and store: alike."""
    env_key = "CG-" + secrets.token_hex(10)
    store_key = "cc" + secrets.token_hex(16)
    monkeypatch.setenv("FEEDS_TEST_CG_KEY", env_key)
    (web.ctx.bots_dir.parent / "feeds.yaml").write_text(
        "services:\n  coingecko: {key: env:FEEDS_TEST_CG_KEY}\n  cryptocompare: {key: store:cryptocompare}\n"
    )
    async with web.ctx.sessions() as db, db.begin():
        db.add(
            ApiSecret(
                name="cryptocompare", kind="feed", ciphertext=web.ctx.box.encrypt(store_key), masked="cc…"
            )
        )
        await save_health(
            db, "coingecko", ok=False, error=f"HTTP 401 /simple/price?x_cg_demo_api_key={env_key}"
        )
        await save_health(
            db, "cryptocompare", ok=False, error=f'HTTP 200 {{"Message": "bad key {store_key}"}}'
        )
    await web.add_user("vera", "viewer")
    viewer = await web.user_client("vera")
    answer = await viewer.get("/feeds/status")
    assert answer.status_code == 200, answer.text
    assert env_key not in answer.text and store_key not in answer.text
    errors = {s["name"]: s["last_error"] for s in answer.json()["sources"]}
    assert errors["cryptocompare"] == 'HTTP 200 {"Message": "bad key ***"}'
    assert "***" in errors["coingecko"]
    await viewer.aclose()


# ---- cells (pure) ---------------------------------------------------------------------------------


def test_cells_say_state_age_generated_and_limit() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    line = FeedLine(
        "spx",
        ("yahoo",),
        ("close",),
        "stale",
        now - timedelta(days=5, hours=2),
        None,
        4 * DAY,
        3,
        1,
        ("generated",),
        True,
    )
    cells = feed_cells(line, now)
    assert cells["tone"] == "warn" and cells["age"] == "5 d 2 h" and cells["max_age"] == "4 d"
    assert cells["stored_from"] == "generated: GENERATED demo data, not market data"
    empty = feed_cells(FeedLine("eth", ("coingecko",), (), "empty", None, None, 7200, 0, 0, (), False), now)
    assert empty["tone"] == "none" and empty["age"] == "–" and empty["stored_from"] == "–"
    source = SourceLine("yahoo", "down", None, EVIL, now, now, 1234, 5, 30.0)
    cells = source_cells(source)
    assert cells["tone"] == "bad" and cells["last_error"] == f"2026-03-01 12:00: {EVIL}"
    assert cells["calls"] == "1,234" and cells["limit"] == "30 / min" and cells["last_success"] == "–"
    assert source_cells(SourceLine("file", "not called", None, None, None, None, 0, 0, None))["limit"] == "–"


# ---- the page -------------------------------------------------------------------------------------


def _table(user, marker: str) -> ui.table:  # type: ignore[no-untyped-def]
    return next(iter(user.find(marker=marker).elements))


async def test_feeds_page_shows_an_empty_state_then_follows_the_store(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/feeds")
        assert [r["state"] for r in (await filled_table(user, "feeds")).rows] == ["empty"] * 4
        await user.should_see(EMPTY, retries=RETRIES)
        assert not _table(user, "feeds").rows[0]["generated"]

        secret = "cc-" + secrets.token_hex(12)
        register_secret(secret)
        await _fear_greed_then_failing(web)
        await _insert(web, secret=secret)
        await run_timers(user)  # what the page's timer does every few seconds
        await user.should_not_see(EMPTY)
        await user.should_see(marker="feeds-generated")
        feeds = {r["feed"]: r for r in _table(user, "feeds").rows}
        assert feeds["btc"]["state"] == "fresh" and feeds["btc"]["tone"] == "good"
        assert feeds["spx"]["tone"] == "warn" and "GENERATED" in feeds["spx"]["stored_from"]
        sources = {r["source"]: r for r in _table(user, "feed-sources").rows}
        assert sources["fear_greed"]["state"] == "degraded" and sources["fear_greed"]["tone"] == "warn"
        assert sources["cryptocompare"]["tone"] == "bad"
        # The remote error is a cell's text: the markup is there as characters, no element came of it.
        assert "<script>alert('feed')</script>" in sources["fear_greed"]["last_error"]
        await user.should_not_see(ui.html)
        assert secret not in sources["cryptocompare"]["last_error"]
        assert len(sources["fear_greed"]["last_error"]) <= ERROR_CHARS + 20


async def test_feeds_page_sends_a_signed_out_browser_to_the_login(web: Web) -> None:
    require_sqlite(web)
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await user.open("/feeds")
        await user.should_see("Sign in", retries=RETRIES)
