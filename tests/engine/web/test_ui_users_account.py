"""The users & API keys page and the account page (NiceGUI simulated user): an ADMIN manages users and
keys through the same audited functions as the API, keys are never shown unmasked, a VIEWER is refused
the page and every handler, and a password change needs the current password (SECURITY.md 9, 14-18)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nicegui import ui
from nicegui.testing.user import User as SimUser
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy import func, select, update

from engine.store.models import ApiSecret, AuditEntry, AuthSession, BackupCode, User
from engine.web.auth import passwords
from engine.web.pages import register_pages

from .conftest import PASSWORD, Web
from .ui_helpers import require_sqlite, sign_in

RETRIES = 50  # a handler may take a while on a busy machine; seeing early costs nothing
EVIL = "<b>bold</b>"  # a valid username (no spaces) that is markup
SECRET = "sk-live-THIS-MUST-NEVER-SHOW-1234567890"


async def user_row(web: Web, username: str) -> User:
    async with web.ctx.sessions() as db:
        row = await db.scalar(select(User).where(User.username == username))
        assert row is not None
        return row


async def audits(web: Web, action: str) -> list[AuditEntry]:
    async with web.ctx.sessions() as db:
        return list((await db.scalars(select(AuditEntry).where(AuditEntry.action == action))).all())


async def live_sessions(web: Web, user_id: str) -> list[AuthSession]:
    async with web.ctx.sessions() as db:
        rows = await db.scalars(
            select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        )
        return list(rows.all())


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:
    """Wait for a click's handler (run as a task) to have written to the database."""
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    assert await check()


async def notified(user: SimUser, text: str, times: int) -> None:
    """Wait for the ``times``-th message holding ``text`` (the pages notify after updating themselves)."""

    async def seen() -> bool:
        return sum(text in m for m in user.notify.messages) >= times

    await eventually(seen)


def page_text(user: SimUser) -> str:
    """Everything the page holds for the browser: every element's props and text."""
    assert user.client is not None
    return "\n".join(f"{el._props!r} {getattr(el, 'text', '')!r}" for el in user.client.elements.values())


async def _active(web: Web, name: str) -> bool:
    return (await user_row(web, name)).active


async def _inactive(web: Web, name: str) -> bool:
    return not (await user_row(web, name)).active


async def _no_sessions(web: Web, user_id: str) -> bool:
    return await live_sessions(web, user_id) == []


async def _key_kind_is(web: Web, name: str, kind: str) -> bool:
    async with web.ctx.sessions() as db:
        return await db.scalar(select(ApiSecret.kind).where(ApiSecret.name == name)) == kind


# ---- /users ----------------------------------------------------------------------------------------


async def test_admin_creates_edits_and_resets_users(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("ada", "admin")
    await web.add_user("tom", "trader")
    tom = await user_row(web, "tom")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "ada")
        await user.open("/users")
        await user.should_see("Users & API keys", retries=RETRIES)
        with user.scope(marker=f"user-{tom.id}"):
            await user.should_see("tom@example.org", retries=RETRIES)
            await user.should_see("2FA on", retries=RETRIES)

        # The password policy applies.
        user.find("Username").type(EVIL)
        user.find("Email").type("bold@example.org")
        user.find("Password").type("password")
        user.find(kind=ui.button, content="Create user").click()
        await user.should_see("too common", retries=RETRIES)
        user.find("Password").clear().type("a long enough passphrase")
        user.find(marker="new-role").elements.pop().set_value("trader")
        user.find(kind=ui.button, content="Create user").click()
        await user.should_see(f"user {EVIL} created", retries=RETRIES)
        created = await user_row(web, EVIL)
        assert created.role == "trader" and created.active and not created.totp_enabled
        assert passwords.verify_password(created.password_hash, "a long enough passphrase")
        with user.scope(marker=f"user-{created.id}"):
            await user.should_see(EVIL, retries=RETRIES)  # the name is a label's text
            await user.should_see("2FA not enrolled", retries=RETRIES)
        await user.should_not_see(ui.html)
        assert [a.detail for a in await audits(web, "user.create")] == [{"role": "trader"}]

        # Change a role: the user's sessions end at once.
        await web.login("tom")
        assert len(await live_sessions(web, tom.id)) == 1
        user.find(marker=f"role-{tom.id}").elements.pop().set_value("viewer")
        with user.scope(marker=f"user-{tom.id}"):
            user.find(kind=ui.button, content="Set role").click()
        await user.should_see("user tom changed", retries=RETRIES)
        assert (await user_row(web, "tom")).role == "viewer"
        assert await live_sessions(web, tom.id) == []

        with user.scope(marker=f"user-{tom.id}"):
            user.find(kind=ui.button, content="Disable").click()
        await notified(user, "user tom changed", 2)
        assert await _inactive(web, "tom")
        with user.scope(marker=f"user-{tom.id}"):
            user.find(kind=ui.button, content="Enable").click()
        await notified(user, "user tom changed", 3)
        assert await _active(web, "tom")

        with user.scope(marker=f"user-{tom.id}"):
            user.find(kind=ui.button, content="Reset 2FA").click()
        await user.should_see("2FA reset for tom", retries=RETRIES)
        reset = await user_row(web, "tom")
        assert not reset.totp_enabled and reset.totp_secret is None
        async with web.ctx.sessions() as db:
            assert await db.scalar(select(func.count()).where(BackupCode.user_id == tom.id)) == 0
        assert len(await audits(web, "user.edit")) == 3
        assert len(await audits(web, "user.reset_2fa")) == 1

        # Setting the role a user already has changes nothing (their sessions stay).
        with user.scope(marker=f"user-{tom.id}"):
            user.find(kind=ui.button, content="Set role").click()
        await user.should_see("no change for tom", retries=RETRIES)

        # An admin cannot demote or disable themself.
        ada = await user_row(web, "ada")
        with user.scope(marker=f"user-{ada.id}"):
            user.find(kind=ui.button, content="Disable").click()
        await user.should_see("you cannot demote or deactivate yourself", retries=RETRIES)
        assert (await user_row(web, "ada")).active


async def test_admin_lists_and_revokes_a_users_sessions(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("ada", "admin")
    await web.add_user("tom", "trader")
    tom = await user_row(web, "tom")
    await web.login("tom")
    await web.login("tom")
    first, second = sorted(await live_sessions(web, tom.id), key=lambda s: s.created_at)
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "ada")
        await user.open("/users")
        with user.scope(marker=f"user-{tom.id}"):
            user.find(kind=ui.button, content="Sessions").click()
        await user.should_see("Sessions of tom", retries=RETRIES)
        with user.scope(marker=f"session-{first.id}"):
            user.find(kind=ui.button, content="Revoke").click()
        await user.should_see("1 session(s) revoked", retries=RETRIES)
        assert [s.id for s in await live_sessions(web, tom.id)] == [second.id]
        with user.scope(marker=f"session-{first.id}"):
            await user.should_see("ended", retries=RETRIES)
        user.find(kind=ui.button, content="Revoke all").click()
        await eventually(lambda: _no_sessions(web, tom.id))
        assert len(await audits(web, "sessions.revoke")) == 2


async def test_api_keys_are_stored_encrypted_and_shown_masked_only(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("ada", "admin")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "ada")
        await user.open("/users")
        await user.should_see("No keys stored.", retries=RETRIES)
        user.find("Key name").type("bad name!")
        user.find("Key value").type(SECRET)
        user.find(kind=ui.button, content="Save key").click()
        await user.should_see("a key name has", retries=RETRIES)
        user.find("Key name").clear().type("binance_main")
        user.find(kind=ui.button, content="Save key").click()
        await user.should_see("key binance_main saved", retries=RETRIES)
        async with web.ctx.sessions() as db:
            row = await db.scalar(select(ApiSecret).where(ApiSecret.name == "binance_main"))
        assert row is not None and row.kind == "exchange"
        assert SECRET not in row.ciphertext and web.ctx.box.decrypt(row.ciphertext) == SECRET
        with user.scope(marker="secret-binance_main"):
            await user.should_see(row.masked, retries=RETRIES)
            await user.should_see("by ada", retries=RETRIES)
        assert SECRET not in page_text(user)  # not in a label, nor left in the input
        assert SECRET not in row.masked

        # Replace it with an OpenAI key; reopening the page still shows the masked form only.
        user.find(marker="key-kind").elements.pop().set_value("openai")
        user.find("Key value").type("sk-openai-ANOTHER-SECRET-VALUE")
        user.find(kind=ui.button, content="Save key").click()
        await eventually(lambda: _key_kind_is(web, "binance_main", "openai"))
        await user.open("/users")
        with user.scope(marker="secret-binance_main"):
            await user.should_see("openai", retries=RETRIES)
        text = page_text(user)
        assert SECRET not in text and "ANOTHER-SECRET" not in text

        with user.scope(marker="secret-binance_main"):
            user.find(kind=ui.button, content="Delete").click()
        await user.should_see("key binance_main deleted", retries=RETRIES)
        async with web.ctx.sessions() as db:
            assert await db.scalar(select(func.count()).select_from(ApiSecret)) == 0
        audited = await audits(web, "secret.set") + await audits(web, "secret.delete")
        assert [a.target for a in audited] == ["secret:binance_main"] * 3
        assert all(SECRET not in repr(a.detail) for a in audited)


async def test_viewer_and_trader_are_refused_the_page_and_its_handlers(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("vera", "viewer")
    await web.add_user("tom", "trader")
    await web.add_user("ada", "admin")
    for name in ("vera", "tom"):
        async with user_simulation(root=None) as user:
            register_pages(web.ctx)
            await sign_in(user, web, name)
            await user.open("/users")
            await user.should_see("may not open this page", retries=RETRIES)
            await user.should_not_see(kind=ui.button, content="Create user")
            await user.should_not_see(kind=ui.link, content="Users & keys")
    # An admin demoted while the page is open: the buttons are still there, the server refuses them all.
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "ada")
        await user.open("/users")
        vera = await user_row(web, "vera")
        async with web.ctx.sessions() as db, db.begin():
            await db.execute(update(User).where(User.username == "ada").values(role="viewer"))
        user.find("Username").type("mallory")
        user.find("Email").type("mallory@example.org")
        user.find("Password").type("a long enough passphrase")
        user.find(kind=ui.button, content="Create user").click()
        await user.should_see("not allowed for role viewer", retries=RETRIES)
        with user.scope(marker=f"user-{vera.id}"):
            user.find(kind=ui.button, content="Disable").click()
            user.find(kind=ui.button, content="Reset 2FA").click()
            user.find(kind=ui.button, content="Sessions").click()
        user.find("Key name").type("k")
        user.find("Key value").type(SECRET)
        user.find(kind=ui.button, content="Save key").click()

        async def refused_five_times() -> bool:
            return user.notify.messages.count("not allowed for role viewer") == 5

        await eventually(refused_five_times)
    async with web.ctx.sessions() as db:
        assert await db.scalar(select(User.id).where(User.username == "mallory")) is None
        assert await db.scalar(select(func.count()).select_from(ApiSecret)) == 0
    after = await user_row(web, "vera")
    assert after.active and after.totp_enabled


# ---- /account ---------------------------------------------------------------------------------------


async def test_password_change_needs_the_current_password_and_ends_other_sessions(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("vera", "viewer")
    vera = await user_row(web, "vera")
    await web.login("vera")  # another session, through the API
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/account")
        await user.should_see("On (required of every user); 10 unused backup code(s).", retries=RETRIES)
        assert len(await live_sessions(web, vera.id)) == 2

        user.find("Current password").type("not my password")
        user.find("New password").type("a brand new passphrase")
        user.find("Repeat new password").type("a brand new passphrase")
        user.find(kind=ui.button, content="Change password").click()
        await user.should_see("the password is not right", retries=RETRIES)
        assert passwords.verify_password((await user_row(web, "vera")).password_hash, PASSWORD)
        assert len(await live_sessions(web, vera.id)) == 2
        assert [a.success for a in await audits(web, "password.change")] == [False]

        user.find("Current password").clear().type(PASSWORD)
        user.find("Repeat new password").clear().type("something else entirely")
        user.find(kind=ui.button, content="Change password").click()
        await user.should_see("differ", retries=RETRIES)

        user.find("New password").clear().type("password123")
        user.find("Repeat new password").clear().type("password123")
        user.find(kind=ui.button, content="Change password").click()
        await user.should_see("too common", retries=RETRIES)

        user.find("New password").clear().type("a brand new passphrase")
        user.find("Repeat new password").clear().type("a brand new passphrase")
        user.find(kind=ui.button, content="Change password").click()
        await user.should_see("password changed", retries=RETRIES)
        assert passwords.verify_password(
            (await user_row(web, "vera")).password_hash, "a brand new passphrase"
        )
        left = await live_sessions(web, vera.id)
        assert len(left) == 1  # this browser's session stays, the other one ended
        await user.open("/account")  # still signed in
        await user.should_see("this browser", retries=RETRIES)


async def test_backup_codes_and_own_sessions(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("vera", "viewer")
    vera = await user_row(web, "vera")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/account")
        user.find(kind=ui.button, content="New backup codes").click()
        await user.should_see("the password is not right", retries=RETRIES)  # asked again, and empty here
        codes_field = next(e for e in user.find(ui.input).elements if e.props.get("label") == "Password")
        codes_field.set_value(PASSWORD)
        user.find(kind=ui.button, content="New backup codes").click()
        await user.should_see("they are not shown again", retries=RETRIES)
        async with web.ctx.sessions() as db:
            unused = await db.scalar(
                select(func.count()).where(BackupCode.user_id == vera.id, BackupCode.used_at.is_(None))
            )
        assert unused == 10
        shown = [
            e.text
            for e in user.find(ui.label).elements
            if len(e.text.replace("-", "")) == 10 and e.text.replace("-", "").isalnum()
        ]
        assert len(shown) == 10
        await user.open("/account")  # shown once: not on the page again
        await user.should_not_see("they are not shown again")
        assert not any(code in page_text(user) for code in shown)

        # Another session of mine: revoked without a question.
        (mine,) = await live_sessions(web, vera.id)
        await web.login("vera")
        (other,) = [s for s in await live_sessions(web, vera.id) if s.id != mine.id]
        await user.open("/account")
        with user.scope(marker=f"session-{other.id}"):
            user.find(kind=ui.button, content="Revoke").click()
        await user.should_see("session revoked", retries=RETRIES)
        assert [s.id for s in await live_sessions(web, vera.id)] == [mine.id]

        # This browser's own session: asked first, then signed out.
        with user.scope(marker="session-current"):
            user.find(kind=ui.button, content="Revoke").click()
        await user.should_see("revoking it signs you out here", retries=RETRIES)
        user.find(kind=ui.button, content="Cancel").click()
        assert [s.id for s in await live_sessions(web, vera.id)] == [mine.id]
        with user.scope(marker="session-current"):
            user.find(kind=ui.button, content="Revoke").click()
        user.find(kind=ui.button, content="Revoke and sign out").click()
        await user.should_see("Sign in", retries=RETRIES)
        assert await live_sessions(web, vera.id) == []
        await user.open("/account")
        await user.should_see("Sign in", retries=RETRIES)
