"""In a real Chromium, what a trader looks at first (issue 16): the portfolio valued in one currency
with each currency's figures beside it, the open positions with their live P&L, the bot chart and
the editor's backtest finding the replay data, readable numbers, bot controls that say what they did,
and every page usable on a phone (390 x 844) as on a desktop (1440 x 900).

Screenshots of every page at both sizes are taken; set E2E_SHOTS=DIR to keep them."""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.conftest import Screen

pytestmark = pytest.mark.slow

DESKTOP = (1440, 900)
PHONE = (390, 844)
SMALL_LAPTOP = (1024, 768)  # the narrowest width with the links in the header
PAGES = ("/", "/bots", "/trades", "/positions", "/logs", "/editor", "/editor/ema_rsi", "/account", "/users")
SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")  # 3.2e-06: never on a page


def _rows(screen: Screen, heading: str) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    rows = screen.find(f"//*[normalize-space()={heading!r}]/following::table[1]//tbody/tr")
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def test_dashboard_values_the_btc_bots_in_usdt_with_units(screen: Screen) -> None:
    screen.size(*DESKTOP)
    screen.sign_in("root")
    screen.wait(lambda: "BTC/USDT candles in the replay data" in screen.text(), what="the BTC rate")
    text = screen.text()
    assert screen.driver.title == "Dashboard · engine"
    assert text.count("root (admin)") == 1  # said once, in the header
    equity = re.search(r"Equity\n([\d,]+\.\d{2}) USDT", text)
    assert equity, text  # the portfolio in USDT: about 1.5 BTC at ~30,000, not 1.5 + nothing
    assert 20_000 < float(equity.group(1).replace(",", "")) < 80_000
    for label in ("P&L today", "P&L this week", "P&L all time"):
        assert re.search(rf"{label}\n[+-]?[\d,]+\.\d{{2}} USDT", text), label
    per_currency = screen.find("//table[.//th[normalize-space()='Currency']]//tbody/tr")
    assert per_currency and per_currency[0].text.startswith("BTC")
    assert " BTC" in per_currency[0].text
    assert not SCIENTIFIC.search(text), SCIENTIFIC.search(text)
    screen.shoot("desktop-dashboard")


def test_positions_show_price_pnl_and_distances_on_both_pages(screen: Screen) -> None:
    screen.size(*DESKTOP)
    screen.sign_in("root")
    screen.open("/positions")
    rows = screen.wait(
        lambda: [r for r in _rows(screen, "Open positions") if len(r) > 5],
        timeout=150,
        what="an open position",
    )
    pair, side, _amount, _entry, price, pnl, pnl_pct, stop, _take_profit, age, bot, close = rows[0][:12]
    assert "/" in pair and side in ("long", "short")
    assert re.fullmatch(r"[\d,]+\.\d+", price), price  # the bot's last close, formatted
    assert re.fullmatch(r"[+-]?\d[\d,]*\.\d{8} BTC", pnl), pnl
    assert re.fullmatch(r"[+-]?\d+\.\d{2} %", pnl_pct), pnl_pct
    assert stop == "–" or re.search(r"\([+-]?\d+\.\d{2} %\)", stop), stop
    assert re.fullmatch(r"\d+ (min|h.*|d.*)", age), age
    assert bot in ("eth-btc-trend", "ltc-xlm-reversal")
    assert "CLOSE" in close.upper() or "close requested" in close
    cell = screen.find("//*[normalize-space()='Open positions']/following::table[1]//tbody/tr[1]/td[6]")[0]
    colour = cell.get_attribute("class")
    assert (
        ("text-positive" in colour) or ("text-negative" in colour) or pnl.startswith(("0.0", "+0.00000000"))
    )
    screen.shoot("desktop-positions-open")
    screen.open("/")
    screen.wait(
        lambda: [r for r in _rows(screen, "Open positions") if len(r) > 5], timeout=30, what="positions"
    )
    headers = [h.text for h in screen.find("//*[normalize-space()='Open positions']/following::table[1]//th")]
    assert headers[:7] == ["Pair", "Side", "Amount", "Entry", "Price", "Unrealised P&L", "P&L %"]


def test_the_bot_chart_and_the_editor_backtest_find_the_replay_data(screen: Screen) -> None:
    screen.size(*DESKTOP)
    screen.sign_in("root")
    screen.open("/bot/eth-btc-trend")
    screen.wait(lambda: screen.find("//*[normalize-space()='Chart']/following::canvas"), what="the chart")
    text = screen.text()
    assert "No 5m candles" not in text and "engine data download" not in text
    assert "not meaningful yet" in text or "Sharpe" in text
    screen.shoot("desktop-bot")
    screen.open("/editor/ema_rsi")
    screen.wait_for_text("Backtest")
    assert not [c for c in screen.find("//canvas") if c.is_displayed()]  # no empty chart before a backtest
    screen.click("Backtest")
    screen.wait(lambda: "trades, final equity" in screen.text(), timeout=120, what="the backtest")
    assert re.search(r"final equity [\d,]+\.\d{8} BTC", screen.text())
    assert "cannot run" not in screen.text()
    screen.wait(lambda: [c for c in screen.find("//canvas") if c.is_displayed()], what="the equity chart")
    screen.shoot("desktop-editor-backtest")


def test_every_page_fits_a_desktop_and_a_phone(screen: Screen) -> None:
    screen.size(*DESKTOP)
    screen.sign_in("root")
    for size, tag in ((DESKTOP, "desktop"), (SMALL_LAPTOP, "laptop"), (PHONE, "phone")):
        screen.size(*size)
        for path in (*PAGES, "/bot/eth-btc-trend"):
            screen.open(path)
            screen.wait(lambda: screen.driver.title.endswith("· engine"), what="the page title")
            time.sleep(1.5)  # tables and charts fill over the socket
            screen.shoot_page(f"{tag}-{path.strip('/').replace('/', '-') or 'dashboard'}")
            assert screen.overflows() <= 1, f"{path} scrolls sideways at {size}"
            links = [a for a in screen.find("//header//a") if a.is_displayed()]
            menu = [b for b in screen.find("//header//button[@aria-label='Menu']") if b.is_displayed()]
            if tag == "phone":
                assert not links and menu, "a phone gets a menu, not a row of links"
            else:
                assert len(links) >= 7 and not menu
    # The phone's menu opens and leads to a page.
    screen.open("/")
    screen.find("//header//button[@aria-label='Menu']")[0].click()
    screen.wait(lambda: [i for i in screen.find("//*[normalize-space()='Positions']") if i.is_displayed()])
    items = screen.find("//div[contains(@class,'q-item')][normalize-space()='Positions']")
    next(i for i in items if i.is_displayed()).click()
    screen.wait(lambda: screen.driver.current_url.endswith("/positions"), what="the positions page")


def test_stop_then_start_say_what_happened_and_only_the_right_button_is_enabled(screen: Screen) -> None:
    screen.size(*DESKTOP)
    screen.sign_in("root")
    screen.open("/bot/ltc-xlm-reversal")
    screen.wait(lambda: "running · paper" in screen.text(), what="a running bot")

    def enabled(label: str) -> bool:
        return all(b.is_enabled() for b in screen.button(label))

    assert enabled("Stop") and not enabled("Start")
    screen.click("Stop")
    screen.wait_for_text("stop requested for ltc-xlm-reversal")
    screen.wait(lambda: "stopped by command" in screen.text(), timeout=60, what="the runtime's answer")
    screen.wait_for_text("stopped by a user (Start resumes it)")
    assert enabled("Start") and not enabled("Stop")
    screen.click("Start")
    screen.wait(lambda: "started by command" in screen.text(), timeout=60, what="the start's outcome")
    screen.wait_for_text("running · paper")
