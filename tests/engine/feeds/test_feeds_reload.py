"""A changed feeds.yaml reaches the running bots that read feeds; an invalid one changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.store.models import Event
from tests.engine.runtime.conftest import make_workspace
from tests.engine.runtime.helpers import database, make_runtime

pytestmark = pytest.mark.slow


async def test_feeds_yaml_reload_recompiles_feed_bots_and_refuses_a_broken_file(tmp_path) -> None:
    root = make_workspace(tmp_path, ["alts_mood.yaml", "eth_btc_trend.yaml"], days=12)
    async with database(root) as factory:
        runtime = make_runtime(root, factory)
        await runtime.start()
        try:
            mood, trend = runtime.runner("alts-mood"), runtime.runner("eth-btc-trend")
            (root / "feeds.yaml").write_text("feeds:\n  fear_greed: {source: fear_greed, max_age: 3d}\n")
            assert await runtime.reload_feeds()
            # The bot reading feeds gets the recompiled plan at its next close; the other is untouched.
            assert mood.pending_reload and not trend.pending_reload
            (root / "feeds.yaml").write_text("feeds:\n  fear_greed: {source: fear_gred}\n")
            assert not await runtime.reload_feeds()
            async with factory() as session:
                events = (await session.scalars(select(Event).where(Event.category == "reload"))).all()
            kinds = [(e.kind, e.message) for e in events]
            assert ("feeds", "feeds.yaml reloaded") in kinds
            invalid = [m for k, m in kinds if k == "invalid"]
            assert invalid and "feeds.yaml:2:" in invalid[0] and "did you mean 'fear_greed'" in invalid[0]
        finally:
            await runtime.stop()
