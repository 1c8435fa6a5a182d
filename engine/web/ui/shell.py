"""What every signed-in page shares.

    @ui.page("/trades")
    async def trades_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return                      # sent to /login, or told it is not allowed
        with frame(user, "Trades"):
            ...

    async def on_close() -> None:       # an event handler runs later, over the socket
        if await action_user(ctx, "positions:close") is None:
            return
        ...

The rules (SECURITY.md): the session is checked against the database by every page builder and by
every event handler, because a handler runs after the page was built, when the session may have
been revoked or the role changed. Permission checks happen here, on the server; hiding a button is
only a courtesy. User text is shown with ``ui.label`` (text), never ``ui.html``/``ui.markdown``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import app, ui

from engine.store.models import AuthSession, User
from engine.web.api.context import WebContext
from engine.web.auth.roles import permissions_of

__all__ = [
    "NAV",
    "action_user",
    "browser_id",
    "client_address",
    "current_user",
    "forget_browser",
    "frame",
    "page_user",
    "remember_session",
    "signed_in_session",
]

# browser id -> signed-in session id. Memory only (no token in app.storage, which is plain JSON on
# disk): a restart of the web app signs everyone out.
_SIGNED_IN: dict[str, str] = {}

# (path, label, permission): the navigation, shown by permission.
NAV: tuple[tuple[str, str, str], ...] = (
    ("/", "Dashboard", "read"),
    ("/bots", "Bots", "read"),
    ("/trades", "Trades", "read"),
    ("/positions", "Positions", "read"),
    ("/logs", "Logs", "read"),
    ("/feeds", "Feeds", "read"),
    ("/news", "News", "read"),
    ("/models", "Models", "read"),
    ("/risk", "Risk limits", "read"),
    ("/editor", "Strategy editor", "read"),
    ("/users", "Users & keys", "users:write"),
    ("/account", "Account", "read"),
)


def browser_id() -> str:
    return str(app.storage.browser["id"])


def client_address() -> str:
    request = ui.context.client.request
    return request.client.host if request is not None and request.client else "unknown"


def remember_session(browser: str, session_id: str) -> None:
    _SIGNED_IN[browser] = session_id


def forget_browser(browser: str) -> str | None:
    return _SIGNED_IN.pop(browser, None)


def signed_in_session(browser: str) -> str | None:
    return _SIGNED_IN.get(browser)


async def current_user(ctx: WebContext, browser: str | None = None) -> User | None:
    """The user of this browser's session if it is still valid (not revoked, user active, 2FA on)."""
    browser = browser_id() if browser is None else browser
    sid = _SIGNED_IN.get(browser)
    if sid is None:
        return None
    async with ctx.sessions() as db:
        sess = await db.get(AuthSession, sid)
        user = await db.get(User, sess.user_id) if sess else None
    if (
        sess is None
        or sess.revoked_at is not None
        or user is None
        or not user.active
        or not user.totp_enabled
    ):
        _SIGNED_IN.pop(browser, None)
        return None
    return user


def allowed(user: User, permission: str) -> bool:
    return permission in permissions_of(user.role)


async def page_user(ctx: WebContext, permission: str = "read") -> User | None:
    """For a page builder: the signed-in user holding ``permission``. Otherwise the page is replaced by
    the login page (not signed in) or a refusal (signed in without the permission), and None."""
    user = await current_user(ctx)
    if user is None:
        ui.navigate.to("/login")
        return None
    if not allowed(user, permission):
        with frame(user, "Not allowed"):
            ui.label(f"Your role ({user.role}) may not open this page.").classes("text-negative")
        return None
    return user


async def action_user(ctx: WebContext, permission: str) -> User | None:
    """For an event handler: the signed-in user holding ``permission``, or None after telling the user
    why (signed out: back to the login page)."""
    user = await current_user(ctx)
    if user is None:
        ui.navigate.to("/login")
        return None
    if not allowed(user, permission):
        ui.notify(f"not allowed for role {user.role}", type="negative")
        return None
    return user


@contextmanager
def frame(user: User, title: str) -> Iterator[ui.column]:
    """The page chrome: a header with the navigation the user may use (links on a wide screen, a menu
    on a phone), who is signed in and sign-out; the tab's title; yields the content column."""
    ui.page_title(f"{title} · engine")
    links = [(path, label) for path, label, permission in NAV if allowed(user, permission)]
    with ui.header().classes("items-center gap-4 bg-slate-800 no-wrap"):
        menu_button = ui.button(icon="menu").props("flat round color=white aria-label=Menu").classes("lt-md")
        with menu_button, ui.menu().mark("nav-menu"):
            for path, label in links:
                ui.menu_item(label, lambda p=path: ui.navigate.to(p))
            ui.separator()
            ui.menu_item("Sign out", lambda: ui.navigate.to("/logout"))
        ui.label("engine").classes("text-lg font-bold")
        with ui.row().classes("gt-sm items-center gap-4 no-wrap"):
            for path, label in links:
                ui.link(label, path).classes("text-white no-underline whitespace-nowrap")
        ui.space()
        ui.label(f"{user.username} ({user.role})").classes("text-sm whitespace-nowrap").mark("signed-in")
        ui.button("Sign out", on_click=lambda: ui.navigate.to("/logout")).props("flat color=white").classes(
            "gt-sm"
        )
    with ui.column().classes("w-full p-2 sm:p-4 gap-4") as content:
        ui.label(title).classes("text-h5")
        yield content
