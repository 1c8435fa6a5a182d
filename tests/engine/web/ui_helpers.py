"""Helpers for the NiceGUI page tests (simulated user). Shared by the page test modules: add new
helpers at the end of this file only."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing.user import User

from .conftest import PASSWORD, Web

__all__ = ["require_sqlite", "sign_in"]


def require_sqlite(web: Web) -> None:
    """Skip the PostgreSQL run of a page test: the pages read through the same queries the API tests
    already run on both databases, and the simulated browser is slow enough once."""
    bind = web.ctx.sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "sqlite":
        pytest.skip("page tests run on SQLite only")


async def sign_in(user: User, web: Web, username: str) -> None:
    """Sign ``username`` in through the login and second-factor pages (the user must exist with 2FA
    enrolled: ``web.add_user(name, role)``). Ends on the page the sign-in lands on (``/``)."""
    await user.open("/login")
    user.find("Username").type(username)
    user.find("Password").type(PASSWORD)
    user.find(kind=ui.button, content="Sign in").click()
    await user.should_see("Enter the code", retries=50)  # a busy machine answers slowly
    web.tick()  # a fresh time step: a code is accepted once per user
    user.find("Code").type(web.code(username))
    user.find(kind=ui.button, content="Verify").click()
    await user.should_see("Sign out", retries=50)  # the landing page may take a moment on a busy machine


async def run_timers(user: User) -> None:
    """Run every ``ui.timer`` callback of the open page once, now (instead of waiting its interval),
    in the timer's own UI context as NiceGUI would, once the server's tails have handed the rows
    committed so far to the pages that watch them (``engine.web.ui.live_updates``)."""
    from engine.web import live_tail

    for tail in list(live_tail._AWAKE):  # the rows committed so far reach the pages' watchers first
        await tail.caught_up()
    timers = list(user.find(ui.timer).elements)
    for timer in sorted(timers, key=lambda t: t.id):
        await timer._invoke_callback()


def emit(element: ui.element, event: str, args: object) -> None:
    """What the browser sends when a slot template emits ``event`` on ``element`` (a button inside a
    table row, which the simulated user cannot click): the element's listeners for it run."""
    for listener_id, listener in list(element._event_listeners.items()):
        if listener.type == event:
            element._handle_event({"listener_id": listener_id, "args": args})


async def filled_table(user: User, marker: str, tries: int = 200) -> ui.table:
    """The table marked ``marker`` once it has rows (pages fill their tables over the socket after
    the page is sent)."""
    import asyncio

    for _ in range(tries):
        found = user.find(marker=marker).elements
        if found and next(iter(found)).rows:
            return next(iter(found))
        await asyncio.sleep(0.05)
    raise AssertionError(f"table {marker!r} stayed empty")
