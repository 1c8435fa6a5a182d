"""In a real Chromium: sign in with password and TOTP, the dashboard of the running bots, a trade the
runtime closes appearing without a page reload; what a VIEWER is shown."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Screen

pytestmark = pytest.mark.slow

TRADE_ROWS = "//*[normalize-space()='Latest trades']/following::table[1]//tbody/tr"


def _trade_rows(screen: Screen) -> list[tuple[str, ...]]:
    """The trade table's rows as cell texts (pair, bot, side, closed, ...)."""
    from selenium.webdriver.common.by import By

    rows = [
        tuple(cell.text for cell in row.find_elements(By.TAG_NAME, "td")) for row in screen.find(TRADE_ROWS)
    ]
    return [row for row in rows if len(row) > 2]


def _stored_trades(screen: Screen) -> set[tuple[str, str, str]]:
    """(bot, pair, close time to the minute) of every trade in the store."""
    rows = screen.server.query(
        "SELECT bots.name, trades.pair, trades.close_time FROM trades JOIN bots ON bots.id = trades.bot_id"
    )
    return {(bot, pair, str(closed)[:16]) for bot, pair, closed in rows}


def test_admin_signs_in_with_totp_and_sees_trades_arrive_without_reload(screen: Screen) -> None:
    screen.open("/")
    screen.wait(lambda: screen.driver.current_url.endswith("/login"), what="the redirect to /login")

    screen.sign_in("root")
    screen.wait_for_text("eth-btc-trend")
    screen.wait_for_text("ltc-xlm-reversal")
    assert "Users & keys" in screen.text()  # an admin's navigation

    # A marker in the page's JavaScript state: a reload would drop it.
    screen.driver.execute_script("window.__e2e_no_reload = true")
    # Trades already stored now may still be arriving on the page's first refresh: only a trade
    # closed after this moment proves the feed updates the open page.
    stored = _stored_trades(screen)

    new_rows = screen.wait(
        lambda: [row for row in _trade_rows(screen) if (row[1], row[0], row[3]) not in stored],
        timeout=120,
        what="a trade closed after the page loaded",
    )
    assert screen.driver.execute_script("return window.__e2e_no_reload === true")
    pair, bot, _, closed = new_rows[0][:4]
    assert bot in ("eth-btc-trend", "ltc-xlm-reversal"), new_rows
    assert (bot, pair, closed) in _stored_trades(screen), new_rows  # the row is a trade of the store
    screen.shoot("dashboard")


def test_wrong_totp_code_is_refused(screen: Screen) -> None:
    screen.open("/login")
    screen.type("Username", "vera")
    screen.type("Password", "correct horse battery")
    screen.click("Sign in")
    screen.wait(lambda: screen.driver.current_url.endswith("/2fa"), what="the second-factor page")
    screen.wait_connected()
    good = screen.server.code("vera")
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    screen.type("Code", wrong)
    screen.click("Verify")
    screen.wait_for_text("invalid code")
    assert screen.driver.current_url.endswith("/2fa")
    screen.open("/")
    screen.wait(lambda: screen.driver.current_url.endswith("/login"), what="no session: back to /login")


def test_viewer_sees_the_dashboard_without_controls(screen: Screen) -> None:
    screen.sign_in("vera")
    screen.wait_for_text("eth-btc-trend")
    page = screen.text()
    assert "vera (viewer)" in page
    assert "Users & keys" not in page
    assert not screen.button("Start") and not screen.button("Stop")
