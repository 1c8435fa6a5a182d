"""In a real Chromium (issue 11): the ``/feeds`` page a VIEWER opens says nothing was fetched yet, then,
without a reload, shows what the store gets: a degraded source with its error as text (markup from a
remote service stays characters), a down one, fresh and generated feeds; at desktop and phone width
(390 px: no sideways scroll), with a clean console. Set E2E_SHOTS=DIR to keep the screenshots."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import E2EServer, Screen

pytestmark = pytest.mark.slow

# Sets a flag if it ever runs (it must not): an <img> whose onerror fires, and a <script>.
EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> upstream said no'

# Every table fits its box (Quasar would otherwise give it a scroll bar of its own).
_TABLES_FIT = (
    "return [...document.querySelectorAll('.q-table__middle')].every(e => e.scrollWidth <= e.clientWidth + 1)"
)


def _seed(server: E2EServer) -> None:
    """What a feed refresh would leave in the store, written through the store's own functions."""
    from sqlalchemy import update

    from engine.feeds.observations import NS_PER_SECOND, Observation
    from engine.feeds.store import save_health, write_observations
    from engine.store import create_engine_for, session_factory
    from engine.store.models import FeedHealth

    async def seed() -> None:
        engine = create_engine_for(f"sqlite:///{server.db_path}")
        try:
            sessions = session_factory(engine)
            now, hour = time.time_ns(), 3600 * NS_PER_SECOND
            day0 = 1_704_067_200 * NS_PER_SECOND  # 2024-01-01: generated demo history, long stale
            async with sessions() as db, db.begin():
                await write_observations(
                    db,
                    [Observation("btc.price", now - hour, now - hour // 2, 43_000.0, "coingecko")]
                    + [
                        Observation(
                            "spx.close",
                            day0 + d * 24 * hour,
                            day0 + d * 24 * hour + hour,
                            4_700.0 + d,
                            "generated",
                        )
                        for d in range(5)
                    ],
                )
                await save_health(db, "coingecko", ok=True, calls=12)
                await save_health(db, "coingecko", ok=False, calls=1, error=f"HTTP 500 ({EVIL})")
                await save_health(db, "yahoo", ok=False, calls=2, error="Unreachable: connection refused")
                await db.execute(
                    update(FeedHealth)
                    .where(FeedHealth.source == "yahoo")
                    .values(state="down", down_since=datetime.now(UTC) - timedelta(hours=1))
                )
        finally:
            await engine.dispose()

    asyncio.run(seed())


def _cells(screen: Screen, marker: str) -> dict[str, list]:
    """First cell's text -> the row's cells, of the table with this test hook."""
    from selenium.webdriver.common.by import By

    rows = screen.find(f"//*[@data-testid={marker!r}]//tbody/tr")
    out = {}
    for row in rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        if cells:
            out[cells[0].text] = cells
    return out


def test_feeds_page_shows_a_degraded_source_as_text_on_desktop_and_phone(
    screen: Screen, e2e_server: E2EServer
) -> None:
    screen.size(1440, 900)
    screen.sign_in("vera")  # a VIEWER may look
    screen.open("/feeds")
    screen.wait_for_text("No feed data yet")
    assert screen.driver.title == "Feeds · engine"
    assert "engine feeds fetch" in screen.text()

    _seed(e2e_server)
    # No reload: the page's timer re-reads the store.
    screen.wait(lambda: "degraded" in screen.text(), what="the degraded source")
    screen.wait(lambda: "No feed data yet" not in screen.text(), what="the empty state to go")
    text = screen.text()
    assert "upstream said no" in text and "<script>window.__pwned=2</script>" in text  # characters
    assert screen.driver.execute_script("return window.__pwned === undefined")
    assert not screen.find("//td//img") and not screen.find("//td//script")
    assert "GENERATED demo data" in text

    sources = screen.wait(lambda: _cells(screen, "feed-sources"), what="the sources table")
    assert "text-warning" in sources["coingecko"][1].get_attribute("class")  # degraded: amber
    assert sources["coingecko"][1].text == "degraded"
    assert sources["yahoo"][1].text == "down" and "text-negative" in sources["yahoo"][1].get_attribute(
        "class"
    )
    assert sources["coingecko"][-1].text == "10 / min"  # its limit
    feeds = _cells(screen, "feeds")
    assert feeds["btc"][1].text == "fresh" and "text-positive" in feeds["btc"][1].get_attribute("class")
    assert feeds["spx"][1].text == "stale" and feeds["eth"][1].text == "empty"
    screen.shoot_page("desktop-feeds")

    screen.size(390, 844)
    screen.open("/feeds")
    screen.wait(lambda: "degraded" in screen.text(), what="the page on a phone")
    time.sleep(1.0)  # the tables lay out again
    assert screen.overflows() <= 1, "/feeds scrolls sideways on a phone"
    assert screen.driver.execute_script(_TABLES_FIT), "a table scrolls sideways on a phone"
    phone = _cells(screen, "feed-sources")
    assert [c.text for c in phone["coingecko"] if c.is_displayed()][:2] == ["coingecko", "degraded"]
    screen.shoot_page("phone-feeds")
    # The phone's menu leads to the page too.
    screen.open("/")
    screen.find("//header//button[@aria-label='Menu']")[0].click()
    screen.wait(
        lambda: [
            i
            for i in screen.find("//div[contains(@class,'q-item')][normalize-space()='Feeds']")
            if i.is_displayed()
        ]
    )
    item = next(
        i
        for i in screen.find("//div[contains(@class,'q-item')][normalize-space()='Feeds']")
        if i.is_displayed()
    )
    item.click()
    screen.wait(lambda: screen.driver.current_url.endswith("/feeds"), what="the feeds page")


def test_the_header_still_fits_a_small_desktop_with_the_feeds_link(screen: Screen) -> None:
    screen.size(1024, 768)  # the narrowest width with the row of links, for an ADMIN (most links)
    screen.sign_in("root")
    screen.open("/feeds")
    screen.wait_for_text("Sources")
    links = [a.text for a in screen.find("//header//a") if a.is_displayed()]
    assert "Feeds" in links and "Users & keys" in links
    assert screen.overflows() <= 1, "the header or the page scrolls sideways at 1024 px"
    screen.shoot_page("small-desktop-feeds")
