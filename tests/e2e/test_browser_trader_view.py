"""In a real Chromium, what a trader looks at first (issue 16): the portfolio valued in one currency
with each currency's figures beside it, the open positions with their live P&L, the bot chart and
the editor's backtest finding the replay data, readable numbers, and every page usable on a phone
(390 x 844) as on a desktop (1440 x 900). Screenshots: set E2E_SHOTS=DIR to keep them."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Screen

pytestmark = pytest.mark.slow

DESKTOP = (1440, 900)
PHONE = (390, 844)
PAGES = ("/", "/bots", "/trades", "/positions", "/logs", "/editor", "/account", "/users")


def test_every_page_fits_a_desktop_and_a_phone(screen: Screen) -> None:
    screen.size(*DESKTOP)
    screen.sign_in("root")
    screen.wait_for_text("eth-btc-trend")
    for size, tag in ((DESKTOP, "desktop"), (PHONE, "phone")):
        screen.size(*size)
        for path in (*PAGES, "/bot/eth-btc-trend"):
            screen.open(path)
            screen.wait(lambda: "engine" in screen.driver.title, what="the page title")
            name = path.strip("/").replace("/", "-") or "dashboard"
            import time

            time.sleep(2.5)
            screen.shoot(f"{tag}-{name}")
            assert screen.overflows() <= 1, f"{path} scrolls sideways at {size}"
