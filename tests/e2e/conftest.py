"""End-to-end harness: ``engine serve`` with the runtime on a replay (as ``engine demo`` runs it), in a
subprocess on a free 127.0.0.1 port, driven by Debian's headless Chromium through Selenium.

- ``e2e_server`` (one per test module, so that it stops before the worker runs other tests): a
  temporary ENGINE_HOME, copies of the example bots and strategies, seeded synthetic candles, an ADMIN
  and a VIEWER enrolled in 2FA with secrets the tests know. The runtime replays fast enough that
  trades keep closing while the tests watch.
- ``screen``: a Chromium driven through Selenium, with helpers (sign in with a TOTP code, wait for
  text); the test fails on a browser console error or a server error in the log.

Chromium and chromedriver come from the Debian packages (``.ci/run`` installs them); the tests skip
without them, except under CI (``CI`` set) where that is an error. Nothing is downloaded
(``SE_OFFLINE``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest

from engine.web.auth import totp

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PASSWORD = "correct horse battery"
# Two bots that trade often on the sample data; all strategies are copied (the editor lists them).
BOTS = ("eth_btc_trend.yaml", "ltc_reversal.yaml")
REPLAY_FROM = "2024-01-03"  # two days of warm-up history before it
SPEED = 600.0  # one 5m candle every half second: a trade closes every few seconds to a minute
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def _require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        message = (
            f"{', '.join(missing)} missing (Debian packages chromium, chromium-driver; .ci/run installs them)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class E2EServer:
    base: str
    home: Path
    bots_dir: Path
    strategies_dir: Path
    process: subprocess.Popen[str]
    log_path: Path
    secrets: dict[str, str]
    last_step: dict[str, int] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.home / "engine.db"

    def code(self, username: str) -> str:
        """A TOTP code the server accepts now: each code works once, so a second sign-in within one
        30 s step uses the next step's code (one step of drift is accepted), else waits for it."""
        while True:
            current = int(time.time() // totp.STEP_SECONDS)
            step = max(current, self.last_step.get(username, -1) + 1)
            if step <= current + 1:
                self.last_step[username] = step
                return pyotp.TOTP(self.secrets[username]).at(step * totp.STEP_SECONDS)
            time.sleep(1)

    def query(self, sql: str, *args: object) -> list[tuple]:
        """Read the engine's SQLite store directly (the test's own view of what the server did)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(sql, args).fetchall()

    def first_bot(self, timeout: float = 60.0) -> str:
        """The first bot by name, once the server's runtime has registered its bots (a loaded machine
        can take seconds after the server answers: reading at once found no bot)."""
        deadline = time.monotonic() + timeout
        while not (rows := self.query("SELECT name FROM bots ORDER BY name LIMIT 1")):
            if time.monotonic() > deadline:
                raise AssertionError(f"no bot registered after {timeout:.0f} s:\n{self.log()[-4000:]}")
            time.sleep(0.25)
        return str(rows[0][0])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def errors(self) -> list[str]:
        """Each ERROR line or traceback in the server's log, a traceback whole (its indented lines
        and the exception line after them), so a failure says what went wrong."""
        found: list[str] = []
        lines = self.log().splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("Traceback"):
                block = [line]
                i += 1
                while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()):
                    block.append(lines[i])
                    i += 1
                if i < len(lines):
                    block.append(lines[i])  # the exception itself
                found.append("\n".join(block))
            elif " ERROR " in line:
                found.append(line)
            i += 1
        return found


def _seed_users(home: Path, url: str) -> dict[str, str]:
    """An ADMIN and a VIEWER with 2FA on, enrolled through the accounts API with the secrets kept.

    Enrolment accepts a code once and later sign-ins only later steps: enrolling on a clock one
    minute behind leaves the current step free for the browser's first sign-in."""
    from argon2 import PasswordHasher

    from engine.web.app import build_context
    from engine.web.auth import accounts, passwords

    async def seed() -> dict[str, str]:
        ctx = await build_context(home, url)
        secrets: dict[str, str] = {}
        earlier = time.time() - 2 * totp.STEP_SECONDS
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(totp, "clock", lambda: earlier)
                # Still argon2id (the server reads the costs from each hash), cheaper to make: the
                # password and ten backup codes per user are hashed here, on a busy CI machine.
                patch.setattr(
                    passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
                )
                for username, role in (("root", "admin"), ("vera", "viewer")):
                    async with ctx.sessions() as db, db.begin():
                        user = await accounts.create_user(
                            db, username, f"{username}@example.org", PASSWORD, role
                        )
                        secret, _ = await accounts.begin_2fa_setup(db, user, ctx.box)
                        code = pyotp.TOTP(secret).at(earlier)
                        await accounts.activate_2fa(db, user, code, ctx.box, "e2e")
                    secrets[username] = secret
        finally:
            await ctx.sessions.kw["bind"].dispose()
        return secrets

    return asyncio.run(seed())


def _write_candles(bots_dir: Path, target: Path) -> None:
    from engine.demo import write_demo_data

    write_demo_data(sorted(bots_dir.glob("*.yaml")), target, days=10)


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EServer]:
    _require_chromium()
    root = tmp_path_factory.mktemp("e2e")
    home, bots_dir, strategies_dir, data = root / "home", root / "bots", root / "strategies", root / "data"
    home.mkdir()
    bots_dir.mkdir()
    for name in BOTS:
        shutil.copy(ROOT / "bots" / name, bots_dir / name)
    shutil.copytree(ROOT / "strategies", strategies_dir)
    _write_candles(bots_dir, data)
    url = f"sqlite:///{home / 'engine.db'}"
    secrets = _seed_users(home, url)

    env = {**os.environ, "ENGINE_HOME": str(home), "ENGINE_DATABASE_URL": url}
    env.pop("ENGINE_SECRET_KEY", None)
    for name in [n for n in env if n.startswith("PYTEST")]:  # NiceGUI switches to its test mode under pytest
        env.pop(name)
    port = _free_port()
    log_path = root / "server.log"
    engine_cmd = str(Path(sys.executable).with_name("engine"))
    command = [
        engine_cmd,
        "serve",
        "--port",
        str(port),
        "--run",
        str(bots_dir),
        "--strategies",
        str(strategies_dir),
        "--replay",
        str(data),
        "--speed",
        str(SPEED),
        "--from",
        REPLAY_FROM,
    ]
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
    server = E2EServer(f"http://127.0.0.1:{port}", home, bots_dir, strategies_dir, process, log_path, secrets)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_serving(server: E2EServer, timeout: float = 90.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"engine serve exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base}/login", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"engine serve did not answer within {timeout:.0f} s:\n{server.log()}")


class Screen:
    """A Chromium tab with the few helpers the tests need."""

    def __init__(self, driver, server: E2EServer, shots: Path) -> None:
        self.driver = driver
        self.server = server
        self.shots = shots

    def open(self, path: str) -> None:
        self.driver.get(self.server.base + path)
        self.wait_connected()

    def wait_connected(self) -> None:
        """Wait for NiceGUI's socket handshake. Events raised before it are each retried on their own
        10 ms timer and can reach the server out of order (a click before the last keystroke)."""
        self.wait(
            lambda: self.driver.execute_script("return window.did_handshake === true"),
            what="the page's socket connection",
        )

    def text(self) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def wait(self, condition: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
        """Poll ``condition`` until it returns something truthy (page updates arrive over the socket)."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

        deadline = time.monotonic() + timeout
        while True:
            try:
                result = condition()
            except (StaleElementReferenceException, WebDriverException):
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                self.shoot("timeout")
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; page:\n{self.text()}\n"
                    f"{self._diagnosis()}"
                )
            time.sleep(0.25)

    def wait_for_text(self, text: str, timeout: float = 30.0) -> None:
        self.wait(lambda: text in self.text(), timeout, repr(text))

    def _diagnosis(self) -> str:
        """What a timed-out wait reports beside the page: the browser's console (a lost socket, a
        reload) and the end of the server's log, since a CI run keeps nothing else."""
        try:
            console = [entry["message"] for entry in self.driver.get_log("browser")]
        except Exception as exc:  # the browser itself may be what failed
            console = [f"(console unavailable: {exc})"]
        log = self.server.log().splitlines()[-40:]
        return "browser console:\n" + "\n".join(console[-20:]) + "\nserver log (end):\n" + "\n".join(log)

    def find(self, xpath: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.XPATH, xpath)

    def input(self, label: str):
        """The input of a NiceGUI/Quasar field by its label text."""
        found = self.wait(
            lambda: self.find(f"//label[.//*[normalize-space()={_xpath_literal(label)}]]//input"),
            what=f"input {label!r}",
        )
        return found[0]

    def type(self, label: str, value: str) -> None:
        element = self.input(label)
        element.clear()
        element.send_keys(value)

    def button(self, label: str):
        """A visible button whose text is ``label`` (Quasar shows it upper-cased; matched case-insensitively)."""
        xpath = (
            "//button[translate(normalize-space(.), 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')"
            f"={_xpath_literal(label.upper())}]"
        )
        return [b for b in self.find(xpath) if b.is_displayed()]

    def click(self, label: str) -> None:
        buttons = self.wait(lambda: self.button(label), what=f"button {label!r}")
        buttons[0].click()

    def sign_in(self, username: str) -> None:
        """Password, then the second factor, then the dashboard."""
        self.open("/login")
        self.type("Username", username)
        self.type("Password", PASSWORD)
        self.click("Sign in")
        self.wait(lambda: self.driver.current_url.endswith("/2fa"), what="the second-factor page")
        self.wait_connected()
        self.type("Code", self.server.code(username))
        self.click("Verify")
        self.wait(lambda: self.driver.current_url.rstrip("/") == self.server.base, what="the dashboard")
        self.wait_for_text(f"{username} (")  # the header says who is signed in

    def shoot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def shoot_page(self, name: str) -> Path:
        """The whole page, not only the window: the window grows to the page's height for the shot."""
        size = self.driver.get_window_size()
        width, height = size["width"], size["height"]
        full = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(width, min(int(full) + 200, 8000))
        try:
            return self.shoot(name)
        finally:
            self.driver.set_window_size(width, height)

    def size(self, width: int, height: int) -> None:
        """The window's size (a phone is 390 x 844); the page lays itself out again."""
        self.driver.set_window_size(width, height)
        inner = self.driver.execute_script("return window.innerWidth")
        if inner != width:  # the window's frame: make the page itself that wide
            self.driver.set_window_size(2 * width - inner, height)

    def overflows(self) -> int:
        """How many pixels the page is wider than the window (0: nothing scrolls sideways)."""
        return int(
            self.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
        )

    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]


def _xpath_literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    return '"' + text + '"'


@pytest.fixture
def screen(e2e_server: E2EServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Screen]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    monkeypatch.setenv("SE_CHROMEDRIVER", str(CHROMEDRIVER))
    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    errors_before = len(e2e_server.errors())
    shots = Path(os.environ.get("E2E_SHOTS") or tmp_path)  # E2E_SHOTS=dir keeps the screenshots
    shots.mkdir(parents=True, exist_ok=True)
    screen = Screen(driver, e2e_server, shots)
    try:
        yield screen
        console = screen.console_errors()
        assert not console, f"browser console errors: {console}"
        new_errors = e2e_server.errors()[errors_before:]
        assert not new_errors, "server errors:\n" + "\n".join(new_errors)
    finally:
        driver.quit()
