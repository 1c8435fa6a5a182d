"""``engine serve`` as a real server on 127.0.0.1 (uvicorn, its socket, its proxy-header handling), for
the weaknesses that live in how it is served (issue 15; SECURITY.md 3, 17, 18): forwarded addresses
believed only from configured proxies, security headers, API docs off by default, private state files."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, _free_port

ENGINE = str(Path(sys.executable).with_name("engine"))


@dataclass
class Served:
    base: str
    home: Path
    process: subprocess.Popen[str]

    def audit(self) -> list[tuple[str | None, int, str | None]]:
        with sqlite3.connect(f"file:{self.home / 'engine.db'}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(
                "SELECT address, success, detail FROM audit_log WHERE action = 'login' ORDER BY id"
            ).fetchall()


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "ENGINE_HOME": str(home)}
    env.pop("ENGINE_DATABASE_URL", None)  # the default: $ENGINE_HOME/engine.db, created by the server
    env.pop("ENGINE_SECRET_KEY", None)
    for name in [n for n in env if n.startswith("PYTEST")]:  # NiceGUI switches to its test mode under pytest
        env.pop(name)
    return env


def _start(home: Path, *extra: str) -> Served:
    port = _free_port()
    process = subprocess.Popen(
        [ENGINE, "serve", "--port", str(port), *extra],
        env=_env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A permissive umask, as on many desktops: the state files must be private all the same.
        preexec_fn=lambda: os.umask(0o022),
    )
    served = Served(f"http://127.0.0.1:{port}", home, process)
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            pytest.fail(f"engine serve exited: {process.communicate()[0]}")
        assert time.monotonic() < deadline, "engine serve did not answer"
        try:
            httpx.get(f"{served.base}/login", timeout=2)
            return served
        except httpx.TransportError:
            time.sleep(0.2)


def _stop(served: Served) -> str:
    served.process.terminate()
    try:
        return served.process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        served.process.kill()
        return served.process.communicate(timeout=10)[0]


def _create_admin(home: Path) -> None:
    os.umask(umask := os.umask(0o022))
    subprocess.run(
        [ENGINE, "users", "create", "-u", "root", "-e", "r@example.org", "-r", "admin"],
        env=_env(home),
        input=f"{PASSWORD}\n{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )
    os.umask(umask)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve") / "home"  # created by the engine itself
    _create_admin(home)
    served = _start(home)
    try:
        yield served
    finally:
        _stop(served)


def _fail_login(base: str, forwarded_for: str) -> httpx.Response:
    return httpx.post(
        f"{base}/auth/login",
        json={"username": "root", "password": "not the password"},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
    )


@pytest.mark.slow
def test_forwarded_for_is_not_believed_by_default(served: Served) -> None:
    before = len(served.audit())
    for i in range(25):
        assert _fail_login(served.base, f"203.0.113.{i + 1}").status_code == 401
    rows = served.audit()[before:]
    assert len(rows) == 25
    # Every failure is booked on the real address, so the per-address throttle blocks it after 20.
    assert {address for address, _, _ in rows} == {"127.0.0.1"}
    assert sum(1 for _, _, detail in rows if detail and "address" in detail) == 5


@pytest.mark.slow
def test_forwarded_for_is_believed_from_a_configured_proxy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _create_admin(home)
    served = _start(home, "--forwarded-allow-ips", "127.0.0.1")
    try:
        assert _fail_login(served.base, "198.51.100.7").status_code == 401
        assert served.audit()[-1][0] == "198.51.100.7"
        # The proxy terminates TLS and says so: the answer carries HSTS (not over plain http otherwise).
        page = httpx.get(f"{served.base}/login", headers={"X-Forwarded-Proto": "https"}, timeout=30)
        assert page.headers["strict-transport-security"] == "max-age=31536000"
    finally:
        _stop(served)
    bad = subprocess.run(
        [ENGINE, "serve", "--forwarded-allow-ips", "proxy.example"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not an IP address or network" in bad.stderr


@pytest.mark.slow
def test_state_directory_and_files_are_private(served: Served) -> None:
    home = served.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    files = [p for p in home.rglob("*") if p.is_file()]
    assert {"engine.db", "jwt_private.pem", "secret.key"} <= {p.name for p in files}
    wide = {
        str(p.relative_to(home)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in files
        if p.stat().st_mode & 0o077
    }
    assert not wide, f"readable by others: {wide}"


@pytest.mark.slow
def test_a_state_file_others_can_read_is_warned_about_at_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _create_admin(home)
    (home / "engine.db").chmod(0o644)
    served = _start(home)
    output = _stop(served)
    assert f"file {home / 'engine.db'} is mode 644" in output and "chmod 600" in output


@pytest.mark.slow
def test_pages_carry_a_nonce_policy_and_the_api_docs_are_off(served: Served) -> None:
    import re

    page = httpx.get(f"{served.base}/login", timeout=30)
    policy = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)  # type: ignore[union-attr]
    scripts = re.findall(r"<script\b[^>]*>", page.text)
    assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts)
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
    again = httpx.get(f"{served.base}/login", timeout=30).headers["content-security-policy"]
    assert again != policy  # a fresh nonce per page
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in page.headers  # plain http, no proxy believed
    assert httpx.get(f"{served.base}/docs", timeout=30).status_code == 404
    assert "/auth/login" in httpx.get(f"{served.base}/openapi.json", timeout=30).json()["paths"]
