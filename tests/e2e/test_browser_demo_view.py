"""``engine demo`` in a real Chromium, as a new user meets it: the first sign-in enrols two-factor
authentication (Enter submits; afterwards only the backup codes stay, with copy and download), then
the dashboard values the BTC bots and the USDT futures bot in one currency with each currency's
figures beside it, and the bot chart finds the demo's replay data (issue 16)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from tests.e2e.conftest import (
    PASSWORD,
    ROOT,
    E2EServer,
    Screen,
    _free_port,
    _require_chromium,
    _wait_until_serving,
)

pytestmark = pytest.mark.slow

# The demo's classic examples: BTC-quoted spot bots and a USDT-settled futures bot.
BOTS = ("eth_btc_trend.yaml", "ltc_reversal.yaml", "dash_etc_mtf.yaml", "xrp_futures_breakout.yaml")


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EServer]:
    """``engine demo`` (the `screen` fixture drives it), from a directory holding only these bots."""
    _require_chromium()
    root = tmp_path_factory.mktemp("demo")
    (root / "bots").mkdir()
    strategies = root / "strategies"
    strategies.mkdir()
    for name in BOTS:
        shutil.copy(ROOT / "bots" / name, root / "bots" / name)
        strategy = re.search(r"^strategy:\s*\.\./strategies/(\S+)", (ROOT / "bots" / name).read_text(), re.M)
        shutil.copy(ROOT / "strategies" / strategy.group(1), strategies / strategy.group(1))
    home = root / "var"
    env = {**os.environ, "ENGINE_HOME": str(home), "ENGINE_DEMO_ADMIN_PASSWORD": PASSWORD}
    for name in [n for n in env if n.startswith(("PYTEST", "ENGINE_DATABASE_URL", "ENGINE_SECRET_KEY"))]:
        env.pop(name)
    port = _free_port()
    log_path = root / "demo.log"
    command = [str(Path(sys.executable).with_name("engine")), "demo", "--port", str(port), "--speed", "1200"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = E2EServer(f"http://127.0.0.1:{port}", home, root / "bots", strategies, process, log_path, {})
    try:
        _wait_until_serving(server, timeout=180)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_first_sign_in_enrols_then_the_demo_reads_in_one_currency(screen: Screen) -> None:
    screen.size(1440, 900)
    screen.open("/login")
    screen.type("Username", "admin")
    screen.input("Password").send_keys(PASSWORD + "\n")  # Enter signs in
    screen.wait(lambda: screen.driver.current_url.endswith("/2fa"), what="the second-factor page")
    screen.wait_connected()
    screen.wait_for_text("Or enter this key:")
    key = re.search(r"Or enter this key: ([A-Z2-7]+)", screen.text()).group(1)
    screen.input("Code").send_keys(pyotp.TOTP(key).now() + "\n")  # Enter verifies
    screen.wait_for_text("Backup codes: each works once")
    page = screen.text()
    assert "Or enter this key" not in page and not screen.button("Verify")
    assert not [img for img in screen.find("//img") if img.is_displayed()]  # the QR code is gone
    assert screen.button("Copy all") and screen.button("Download") and screen.button("Continue")
    codes = re.findall(r"^[0-9a-z-]{8,}$", page, re.M)
    assert len(codes) == 10, page
    screen.shoot("demo-backup-codes")
    screen.click("Continue")
    screen.wait(lambda: screen.driver.current_url.rstrip("/") == screen.server.base, what="the dashboard")

    # Both currencies listed with their own figures; the total in USDT only once both are converted.
    screen.wait(
        lambda: len(screen.find("//table[.//th[normalize-space()='Currency']]//tbody/tr")) == 2,
        timeout=120,
        what="a BTC and a USDT row",
    )
    rows = [r.text for r in screen.find("//table[.//th[normalize-space()='Currency']]//tbody/tr")]
    assert (
        rows[0].startswith("BTC") and " BTC" in rows[0] and "BTC/USDT candles in the replay data" in rows[0]
    )
    assert rows[1].startswith("USDT") and " USDT" in rows[1]
    equity = re.search(r"Equity\n([\d,]+\.\d{2}) USDT", screen.text())
    total = float(equity.group(1).replace(",", ""))
    assert total > 10_000, total  # 1.2 BTC at ~30,000 plus 1,000 USDT; never 1,001.2
    screen.shoot_page("demo-dashboard-desktop")
    screen.size(390, 844)
    screen.open("/")
    screen.wait_for_text("USDT")
    assert screen.overflows() <= 1
    screen.shoot_page("demo-dashboard-phone")

    screen.size(1440, 900)
    screen.open("/bot/eth-btc-trend")
    screen.wait(lambda: screen.find("//*[normalize-space()='Chart']/following::canvas"), what="the bot chart")
    assert "No 5m candles" not in screen.text()
    screen.shoot_page("demo-bot")
