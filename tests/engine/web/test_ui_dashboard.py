"""The dashboard page with NiceGUI's simulated user."""

from __future__ import annotations

from nicegui.testing.user_simulation import user_simulation

from engine.web.pages import register_pages

from .conftest import Web
from .ui_helpers import require_sqlite, sign_in


async def test_sign_in_lands_on_the_dashboard(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.should_see("vera (viewer)")
