"""In a real Chromium (issue 12): news headlines are untrusted input. Items whose titles carry a
``<script>`` and an ``<img onerror=...>`` (and one whose link is ``javascript:``) are stored through
the ingestion path into the running server's database; a VIEWER reaches ``/news`` from the navigation
and sees the markup as characters: no element is made of it, nothing runs (flags stay unset, the
console stays clean), and the ``javascript:`` link is no link. The bot page of the ETH bot shows the
coin's sentiment under its chart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import E2EServer, Screen

pytestmark = pytest.mark.slow

SCRIPT = "Ethereum <script>window.__pwned=1;console.error('pwned')</script> rally continues"
IMG = "ETH <img src=x onerror=\"window.__pwned=2;console.error('pwned')\"> bridge hacked"
JS_LINK = "Bitcoin ETF approval sends BTC higher"
# Published the day before the replay starts (2024-01-03): under the bot's chart.
PUBLISHED = int(datetime(2024, 1, 2, 12, tzinfo=UTC).timestamp()) * 1_000_000_000


def _store(server: E2EServer) -> None:
    from engine.sentiment.config import SentimentConfig
    from engine.sentiment.items import NewsItem
    from engine.sentiment.pipeline import NewsPipeline
    from engine.store import create_engine_for, session_factory

    def item(title: str, url: str, minutes: int) -> NewsItem:
        return NewsItem("coindesk.com", "rss", url, title, PUBLISHED + minutes * 60_000_000_000)

    async def store() -> None:
        engine = create_engine_for(f"sqlite:///{server.db_path}")
        pipeline = NewsPipeline(SentimentConfig(default_feeds=False), session_factory(engine))
        try:
            items = [
                item(SCRIPT, "https://coindesk.com/a", 0),
                item(IMG, "https://coindesk.com/b", 30),
                item(JS_LINK, "javascript:window.__pwned=3", 60),
            ]
            await pipeline.store(items, PUBLISHED + 61 * 60_000_000_000)
        finally:
            await pipeline.aclose()
            await engine.dispose()

    asyncio.run(store())


def test_headlines_with_markup_show_as_text_and_nothing_runs(screen: Screen, e2e_server: E2EServer) -> None:
    _store(e2e_server)
    screen.size(1440, 900)
    screen.sign_in("vera")  # a VIEWER may read the news
    link = screen.wait(
        lambda: [a for a in screen.find("//header//a[normalize-space()='News']") if a.is_displayed()],
        what="the News link in the navigation",
    )
    link[0].click()
    screen.wait(lambda: screen.driver.current_url.endswith("/news"), what="the news page")
    screen.wait_connected()
    screen.wait(lambda: "bridge hacked" in screen.text(), what="the stored headlines")
    assert screen.driver.title == "News · engine"
    text = screen.text()
    # The markup is there, literally, as the characters of the headlines.
    assert "<script>window.__pwned=1;console.error('pwned')</script>" in text
    assert "<img src=x onerror=\"window.__pwned=2;console.error('pwned')\">" in text
    # No element came of it, and nothing ran.
    assert not screen.find("//*[@data-testid='news']//img") and not screen.find(
        "//*[@data-testid='news']//script"
    )
    assert screen.driver.execute_script("return window.__pwned === undefined")
    # Links: http(s) ones open in a new tab without an opener; the javascript: one is no link.
    anchors = {a.text: a for a in screen.find("//*[@data-testid='news']//tbody//a")}
    assert anchors[SCRIPT].get_attribute("href") == "https://coindesk.com/a"
    assert anchors[SCRIPT].get_attribute("target") == "_blank"
    assert "noopener" in anchors[SCRIPT].get_attribute("rel")
    assert JS_LINK not in anchors and JS_LINK in text
    assert not screen.find("//a[starts-with(@href, 'javascript')]")
    screen.shoot_page("news")

    # One coin: the ETH items only (the BTC one is another coin's).
    screen.open("/news?coin=eth")
    screen.wait(lambda: "bridge hacked" in screen.text() and JS_LINK not in screen.text(), what="ETH's news")

    # The ETH bot's page: the coin's sentiment under the chart (a canvas), and a way to its news.
    screen.open("/bot/eth-btc-trend")
    screen.wait(lambda: "Recent news about ETH" in screen.text(), timeout=60, what="the sentiment panel")
    assert screen.find("//*[contains(normalize-space(), 'News sentiment')]") or screen.find("//canvas")
    assert screen.driver.execute_script("return window.__pwned === undefined")
    screen.shoot_page("bot-sentiment")
