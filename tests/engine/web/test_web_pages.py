"""The NiceGUI pages with NiceGUI's simulated user: the password alone opens no page, the 2FA flow
signs in, bot names are shown as text, a revoked session loses the page (SECURITY.md 4, 14, 16)."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy import select

from engine.store.enums import BotMode
from engine.store.models import Bot, User
from engine.web.auth import accounts
from engine.web.pages import register_pages

from .conftest import PASSWORD, Web

EVIL = "<img src=x onerror=alert(1)>"


async def test_login_second_factor_landing_and_revocation(web: Web) -> None:
    await web.add_user("alice", "viewer")
    async with web.ctx.sessions() as db, db.begin():
        db.add(Bot(name=EVIL, config_hash="", mode=BotMode.PAPER))
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await user.open("/")
        await user.should_see("Sign in")  # not signed in: sent to the login page
        user.find("Username").type("alice")
        user.find("Password").type("wrong password")
        user.find(ui.button).click()
        await user.should_see("invalid username or password")
        user.find("Password").clear().type(PASSWORD)
        user.find(ui.button).click()
        await user.should_see("Enter the code")
        await user.open("/")  # password alone: still no page
        await user.should_see("Sign in")
        await user.open("/2fa")
        web.tick()
        user.find("Code").type(web.code("alice"))
        user.find(ui.button).click()
        await user.should_see("alice (viewer)", retries=50)
        await user.should_see(EVIL)  # the name as text, not an element
        await user.should_see("stopped · paper")
        await user.should_not_see(ui.image)
        async with web.ctx.sessions() as db, db.begin():
            uid = await db.scalar(select(User.id).where(User.username == "alice"))
            await accounts.revoke_sessions(db, uid, reason="admin")
        await user.open("/")
        await user.should_see("Sign in")


async def test_enter_submits_and_enrolment_leaves_only_the_backup_codes(web: Web) -> None:
    import pyotp

    await web.add_user("newbie", "viewer", enrol=False)
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await user.open("/login")
        user.find("Username").type("newbie")
        user.find("Password").type(PASSWORD).trigger("keydown.enter")  # Enter, no click
        await user.should_see("Set up two-factor authentication", retries=50)
        key = next(
            label.text.removeprefix("Or enter this key: ")
            for label in user.find(ui.label).elements
            if label.text.startswith("Or enter this key: ")
        )
        web.tick()
        user.find("Code").type(pyotp.TOTP(key).at(int(web.clock[0]))).trigger("keydown.enter")
        await user.should_see(marker="backup-codes", retries=50)
        (codes,) = user.find(marker="backup-codes").elements
        assert len(codes.text.split()) == 10
        # The QR code, the key, the code field and Verify are gone; copy and download are offered.
        await user.should_not_see(ui.image)
        await user.should_not_see("Or enter this key")
        await user.should_not_see(kind=ui.button, content="Verify")
        await user.should_see(kind=ui.button, content="Copy all")
        await user.should_see(kind=ui.button, content="Download")
        user.find(kind=ui.button, content="Download").click()
        await user.should_see(kind=ui.button, content="Continue")
