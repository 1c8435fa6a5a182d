"""News in the web app (issue 12): ``GET /news/`` and the ``/news`` page for every signed-in role, and
the sentiment panel under a bot's chart. Items are stored through the real ingestion path
(NewsPipeline.store: tagging, scoring, dedup, point-in-time observations); headlines carrying markup
stay text and a non-http(s) link is never made a link."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pandas as pd
import pytest
from nicegui import ui
from nicegui.testing.user_simulation import user_simulation

from engine.data import CandleStore, synth_candles
from engine.sentiment.config import SentimentConfig
from engine.sentiment.items import NewsItem
from engine.sentiment.pipeline import NewsPipeline
from engine.store.enums import BotMode, BotStatus
from engine.store.models import Bot, EquitySnapshot
from engine.web.news_lines import NewsLine, pair_coin, safe_link
from engine.web.pages import register_pages
from engine.web.ui import live_updates
from engine.web.ui.news import EMPTY, news_cells

from .conftest import Web
from .ui_helpers import filled_table, require_sqlite, run_timers, sign_in

REPO = Path(__file__).resolve().parents[3]
RETRIES = 50
NS = 1_000_000_000
EVIL = "Ethereum <script>alert(1)</script> rally <img src=x onerror=alert(2)> continues"
START = pd.Timestamp("2026-01-05 00:00", tz="UTC")


def at(candle: int, minutes: int = 0) -> int:
    """ns of the open of 5m candle ``candle`` of the chart's history, plus ``minutes``."""
    return int((START + pd.Timedelta(minutes=5 * candle + minutes)).value)


def item(title: str, url: str, published: int, source: str = "coindesk.com", **kw) -> NewsItem:
    return NewsItem(source=source, source_kind="rss", url=url, title=title, published_at=published, **kw)


async def store(web: Web, items: list[NewsItem], fetched: int) -> None:
    pipeline = NewsPipeline(SentimentConfig(default_feeds=False, ingest_lag="5m"), web.ctx.sessions)
    try:
        await pipeline.store(items, fetched)
    finally:
        await pipeline.aclose()


async def store_mix(web: Web) -> None:
    now = at(0)
    await store(
        web,
        [
            item(EVIL, "https://coindesk.com/a", now - 3 * 60 * NS),
            item("Bitcoin ETF approval sends BTC to record highs", "javascript:alert(3)", now - 2 * 60 * NS),
            item(
                "Solana outage halts the network for hours",
                "https://decrypt.co/s",
                now - 60 * NS,
                "decrypt.co",
            ),
        ],
        now,
    )


# ---- pure -----------------------------------------------------------------------------------------


def test_only_http_links_are_links_and_a_pair_names_its_coin() -> None:
    assert safe_link("https://coindesk.com/x?a=1") == "https://coindesk.com/x?a=1"
    assert safe_link("http://a.b/") == "http://a.b/"
    for bad in ("javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,<b>", "//evil.com/x", "", None):
        assert safe_link(bad) is None
    assert safe_link("https://a.b/\nx") is None and safe_link("https:///nohost") is None
    assert pair_coin("ETH/BTC") == "eth" and pair_coin("BTC/USDT:USDT") == "btc"


def test_cells_keep_markup_as_text_and_say_who_scored() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 1, 5, 12, tzinfo=UTC)
    line = NewsLine(
        1,
        when,
        when,
        "x.com",
        ("y.com",),
        EVIL,
        None,
        ("eth",),
        -0.4,
        "local",
        -0.4,
        None,
        "budget",
        ("hack",),
    )
    cells = news_cells(line)
    assert cells["title"] == EVIL and cells["link"] is None
    assert cells["source"] == "x.com (also y.com)" and cells["score"] == "-0.40" and cells["tone"] == "loss"
    assert (
        cells["scored_by"] == "local (model: budget)"
        and cells["coins"] == "ETH"
        and cells["events"] == "hack"
    )


# ---- API ------------------------------------------------------------------------------------------


async def test_news_api_needs_a_sign_in_filters_by_coin_and_keeps_only_http_links(web: Web) -> None:
    assert (await web.client.get("/news/")).status_code == 401
    await web.add_user("vera", "viewer")
    viewer = await web.user_client("vera")
    assert (await viewer.get("/news/")).json() == []
    await store_mix(web)
    body = (await viewer.get("/news/")).json()
    assert next(i["title"] for i in body).startswith("Solana outage")  # newest first
    by_title = {i["title"]: i for i in body}
    assert EVIL in by_title and by_title[EVIL]["link"] == "https://coindesk.com/a"
    etf = by_title["Bitcoin ETF approval sends BTC to record highs"]
    assert etf["link"] is None and "btc" in etf["coins"] and etf["score"] > 0 and etf["scored_by"] == "local"
    assert "outage" in by_title["Solana outage halts the network for hours"]["events"]
    eth = (await viewer.get("/news/", params={"coin": "eth"})).json()
    assert [i["title"] for i in eth] == [EVIL]
    assert len((await viewer.get("/news/", params={"limit": 1})).json()) == 1
    for bad in ({"limit": 0}, {"limit": 501}, {"coin": "<b>"}):
        assert (await viewer.get("/news/", params=bad)).status_code == 422
    await viewer.aclose()


# ---- the page -------------------------------------------------------------------------------------


async def test_news_page_empty_then_items_as_text_with_a_coin_filter(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.should_see("News")  # in the navigation
        await user.open("/news")
        await user.should_see(EMPTY, retries=RETRIES)

        await store_mix(web)
        await run_timers(user)  # what the page's timer does every few seconds
        await user.should_not_see(EMPTY)
        table = await filled_table(user, "news")
        rows = {r["title"]: r for r in table.rows}
        assert len(rows) == 3 and rows[EVIL]["link"] == "https://coindesk.com/a"
        assert rows["Bitcoin ETF approval sends BTC to record highs"]["link"] is None
        # The markup is a cell's text; no element was made of it.
        await user.should_not_see(ui.html)
        select = next(iter(user.find(marker="news-coin").elements))
        assert select.options[0] == "all coins" and {"eth", "btc", "sol"} <= set(select.options)

        select.set_value("sol")  # what choosing a coin does
        for _ in range(100):
            if [r["title"] for r in table.rows] == ["Solana outage halts the network for hours"]:
                break
            await asyncio.sleep(0.05)
        assert [r["title"] for r in table.rows] == ["Solana outage halts the network for hours"]

        await user.open("/news?coin=eth")
        table = await filled_table(user, "news")
        assert [r["title"] for r in table.rows] == [EVIL]


async def test_news_page_sends_a_signed_out_browser_to_the_login(web: Web) -> None:
    require_sqlite(web)
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await user.open("/news")
        await user.should_see("Sign in", retries=RETRIES)


# ---- the bot page's sentiment panel ---------------------------------------------------------------

BOT_YAML = """\
bot: news-bot
strategy: ../strategies/ema_rsi.yaml
exchange: {name: binance, mode: paper}
pairs: [ETH/BTC]
capital: {initial: 1 BTC}
"""


@pytest.fixture
def bot_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ENGINE_HOME", str(home))
    candles = synth_candles("ETH/BTC", "5m", START, periods=600, seed=7, start_price=0.05)
    CandleStore(home / "data").save("binance", "ETH/BTC", "5m", candles, source="synth", synthetic=True)
    root = tmp_path / "config"
    (root / "strategies").mkdir(parents=True)
    shutil.copy(REPO / "strategies" / "ema_rsi.yaml", root / "strategies" / "ema_rsi.yaml")
    (root / "bots").mkdir()
    path = root / "bots" / "news_bot.yaml"
    path.write_text(BOT_YAML, encoding="utf-8")
    return path


async def add_bot(web: Web, bot_file: Path) -> int:
    async with web.ctx.sessions() as db, db.begin():
        bot = Bot(
            name="news-bot",
            config_path=str(bot_file),
            config_hash="",
            mode=BotMode.PAPER,
            status=BotStatus.RUNNING,
        )
        db.add(bot)
        await db.flush()
    return bot.id


async def open_bot(user, web: Web, bot_id: int) -> None:  # type: ignore[no-untyped-def]
    await user.open(f"/bot/{bot_id}")
    await user.should_see("Configuration", retries=RETRIES)  # the whole page is built


async def test_bot_page_shows_the_coins_sentiment_as_its_rules_saw_it(
    web: Web, bot_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_sqlite(web)
    bot_id = await add_bot(web, bot_file)
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await open_bot(user, web, bot_id)
        # No sentiment.yaml, nothing stored: the page is as before.
        await user.should_not_see(marker="sentiment-chart")
        await user.should_not_see(marker="sentiment-none")
        (web.ctx.bots_dir.parent / "sentiment.yaml").write_text("default_feeds: false\n")
        await open_bot(user, web, bot_id)
        await user.should_see(marker="sentiment-none")

        # Fetched live a minute after publication: known from published + 5 min (the ingest lag).
        await store(
            web,
            [item("Ethereum rally: ETH surges to new highs as bulls return", "https://a.io/1", at(200, 1))],
            at(200, 2),
        )
        await store(
            web,
            [
                item(
                    "Ethereum bridge hacked, attackers drain $100M in an exploit",
                    "https://a.io/2",
                    at(400, 1),
                )
            ],
            at(400, 2),
        )
        await store(web, [item("Bitcoin miners sell", "https://a.io/3", at(300))], at(300, 1))  # not ETH
        await open_bot(user, web, bot_id)
        await user.should_see(marker="sentiment-news-link")
        (chart,) = user.find(marker="sentiment-chart").elements
        options = chart.options
        labels = options["xAxis"]["data"]
        assert (
            labels[0] == f"{START + pd.Timedelta(minutes=500):%Y-%m-%d %H:%M}"
        )  # the bot chart's 500 candles
        line, news, events = options["series"]
        score = dict(zip(labels, line["data"], strict=True))

        def label(candle: int) -> str:
            return f"{START + pd.Timedelta(minutes=5 * candle):%Y-%m-%d %H:%M}"

        # Candle 200 closes at 201:00, before the item is known (200:06): no score yet; the next one has it.
        assert score[label(199)] is None and score[label(200)] is None
        assert score[label(201)] is not None and score[label(201)] > 0
        # The hack at 400 pulls the decayed mean down from the next candle on.
        assert score[label(401)] < score[label(400)]
        assert [p["value"][0] for p in news["data"]] == [label(201), label(401)]
        assert [(p["name"], p["value"][0]) for p in events["data"]] == [("hack", label(401))]
        # No headline in the chart.
        assert all("Ethereum" not in str(p) for p in news["data"] + events["data"])

        # A candle close of the bot redraws the chart: the panel is the same chart, updated in place.
        later = item("Ethereum ETF approval sends ETH higher", "https://a.io/4", at(450, 1))
        await store(web, [later], at(450, 2))
        async with web.ctx.sessions() as db, db.begin():
            when = (START + pd.Timedelta(minutes=5 * 599)).to_pydatetime()
            db.add(EquitySnapshot(bot_id=bot_id, time=when, equity=1.0, cash=1.0))
        monkeypatch.setattr(live_updates, "SAFETY_SECONDS", 0.0)  # re-read now, not in 30 s
        await run_timers(user)
        (again,) = user.find(marker="sentiment-chart").elements
        assert again is chart
        assert [p["value"][0] for p in again.options["series"][1]["data"]] == [
            label(201),
            label(401),
            label(451),
        ]
