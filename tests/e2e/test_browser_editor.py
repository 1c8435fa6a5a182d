"""In a real Chromium: an ADMIN changes a rule in the strategy editor and saves; the YAML file changes
(comments kept) and the running bot picks the new strategy up (a reload ``applied`` event in the
store). A VIEWER is offered no Save and the file stays as it is."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Screen

pytestmark = pytest.mark.slow

STRATEGY = "ema_rsi"  # used by the running bot eth-btc-trend
OLD_RULE = "crosses_above(fast_ma, slow_ma) and momentum < rsi_max"
NEW_RULE = "crosses_above(fast_ma, slow_ma) and momentum < 65"


def _by_testid(screen: Screen, name: str, tag: str):
    """The ``tag`` element a ``data-testid`` hook names (on the element itself or on its Quasar wrapper)."""
    from selenium.webdriver.common.by import By

    css = f'{tag}[data-testid="{name}"], [data-testid="{name}"] {tag}'
    return screen.wait(lambda: screen.driver.find_elements(By.CSS_SELECTOR, css), what=f"{tag} of {name}")[0]


def _set_text(screen: Screen, element, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    element.click()
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def _reload_events(screen: Screen, bot: str) -> list[tuple]:
    return screen.server.query(
        "SELECT events.id, events.message FROM events JOIN bots ON bots.id = events.bot_id "
        "WHERE events.category = 'reload' AND events.kind = 'applied' AND bots.name = ?",
        bot,
    )


def test_admin_saves_a_rule_and_the_running_bot_picks_it_up(screen: Screen) -> None:
    path = screen.server.strategies_dir / f"{STRATEGY}.yaml"
    before = path.read_text()
    assert OLD_RULE in before
    reloads_before = len(_reload_events(screen, "eth-btc-trend"))

    screen.sign_in("root")
    screen.open(f"/editor/{STRATEGY}")
    rule = _by_testid(screen, "rule-text-entry-long", "textarea")
    screen.wait(lambda: rule.get_attribute("value") == OLD_RULE, what="the entry rule's text")
    _set_text(screen, rule, NEW_RULE)
    screen.wait(lambda: rule.get_attribute("value") == NEW_RULE, what="the new rule in the editor")
    errors = _by_testid(screen, "rule-error-entry-long", "div")
    # Each keystroke is checked on the server; the error of a half-typed rule ("... and ") shows until
    # the check of the last keystroke comes back over the socket.
    screen.wait(lambda: errors.text == "", what="the finished rule checked without error")
    screen.click("Save")
    screen.wait_for_text(f"saved {STRATEGY}.yaml", timeout=60)

    after = path.read_text()
    assert f"long: {NEW_RULE}" in after and OLD_RULE not in after
    # The rest of the file as it was: comments and key order kept by the round trip.
    assert after.replace(NEW_RULE, OLD_RULE) == before

    # Hot reload: the file is validated and the bot switches at its next candle close.
    events = screen.wait(
        lambda: _reload_events(screen, "eth-btc-trend")[reloads_before:],
        timeout=90,
        what="a reload 'applied' event of eth-btc-trend",
    )
    assert "new configuration in effect" in events[0][1]
    screen.shoot("editor-saved")


def test_viewer_gets_no_save_in_the_editor(screen: Screen) -> None:
    path = screen.server.strategies_dir / f"{STRATEGY}.yaml"
    before = path.read_text()
    screen.sign_in("vera")
    screen.open(f"/editor/{STRATEGY}")
    screen.wait_for_text("Read-only")
    rule = _by_testid(screen, "rule-text-entry-long", "textarea")
    _set_text(screen, rule, "close > open")
    screen.wait(lambda: rule.get_attribute("value") == "close > open", what="the viewer's edit in the page")
    assert not screen.button("Save")
    assert path.read_text() == before
