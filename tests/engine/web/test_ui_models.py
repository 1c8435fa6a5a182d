"""The models page (``/models``, issue 13): every role sees the registry's versions with their
out-of-sample metrics, the latest drift and the model events; an ADMIN promotes and rolls back through
the same checks as ``engine ml promote`` (files changed since training are refused, nothing changes),
each audited and recorded as an event; a VIEWER gets no buttons."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy import func, select

from engine.ml.pipeline import pair_data
from engine.ml.registry import list_versions, register_version
from engine.ml.train import train_and_save
from engine.store import EventCategory, record_event
from engine.store.models import AuditEntry, Event
from engine.web.pages import register_pages
from tests.engine.ml.conftest import walk, write_model  # noqa: F401 (a fixture)

from .conftest import Web
from .ui_helpers import filled_table, require_sqlite, run_timers, sign_in

RETRIES = 50


@pytest.fixture
async def registered(web: Web, write_model, tmp_path):  # type: ignore[no-untyped-def]  # noqa: F811
    """Two versions of one real model (files with checksums), v1 in production."""
    loaded = write_model(pairs=("AAA/BTC",), per_pair=True)
    data = [pair_data(loaded, "AAA/BTC", walk(21, 5))]
    outcome = train_and_save(loaded, data, tmp_path / "files", workers=1)
    fields = outcome.registry_fields()
    async with web.ctx.sessions() as db, db.begin():
        for version in ("v1", "v2"):
            await register_version(db, **{**fields, "version": version})
        from engine.ml.registry import promote

        await promote(db, fields["name"], "v1", "cli:ops")
    return fields["name"], outcome


async def _versions(web: Web, name: str) -> dict[str, str]:
    async with web.ctx.sessions() as db:
        return {r.version: r.status for r in await list_versions(db, name)}


async def test_an_admin_promotes_and_rolls_back_with_the_cli_s_checks(web: Web, registered) -> None:  # type: ignore[no-untyped-def]
    require_sqlite(web)
    name, outcome = registered
    await web.add_user("root", "admin")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "root")
        await user.open("/models")
        await user.should_see("Models", retries=RETRIES)
        await user.should_see(marker=f"versions-{name}", retries=RETRIES)  # built once the page is connected
        table = await filled_table(user, f"versions-{name}")
        assert [(r["version"], r["status"]) for r in table.rows] == [
            ("v2", "candidate"),
            ("v1", "production"),
        ]
        assert table.rows[0]["balanced_accuracy"] != "-"  # the out-of-sample metric of the training

        user.find(marker=f"promote-{name}").click()  # v2, the one offered
        await user.should_see(f"model {name}: version v2 in production", retries=RETRIES)
        assert await _versions(web, name) == {"v1": "retired", "v2": "production"}
        async with web.ctx.sessions() as db:
            kinds = (await db.scalars(select(Event.kind).where(Event.kind.like("ml/%")))).all()
            audits = await db.scalar(select(func.count()).where(AuditEntry.action == "model.promote"))
        assert kinds == ["ml/promoted"] and audits == 1

        user.find(marker=f"rollback-{name}").click()
        await user.should_see(f"model {name}: version v1 in production", retries=RETRIES)
        assert await _versions(web, name) == {"v1": "production", "v2": "retired"}

        # Files changed since training: refused with the reason, nothing changes.
        meta = outcome.path / "meta.json"
        meta.write_text(meta.read_text() + " ")
        user.find(marker=f"promote-{name}").click()
        await user.should_see("does not match the registry's checksum", retries=RETRIES)
        assert await _versions(web, name) == {"v1": "production", "v2": "retired"}

        # Drift recorded by `engine ml drift` (or engine run) shows when its event is committed.
        async with web.ctx.sessions() as db, db.begin():
            await record_event(
                db,
                EventCategory.SYSTEM,
                "ml/drift",
                f"model {name}: major feature drift (PSI > 0.25) in rsi",
                data={"model": name, "psi": {"rsi": 0.4, "ret": 0.05}},
            )
        await run_timers(user)
        (drift,) = user.find(marker=f"drift-{name}").elements
        assert [(r["feature"], r["level"]) for r in drift.rows] == [("rsi", "major"), ("ret", "none")]


async def test_a_viewer_sees_the_models_without_buttons(web: Web, registered) -> None:  # type: ignore[no-untyped-def]
    require_sqlite(web)
    name, _ = registered
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/models")
        await user.should_see(marker=f"versions-{name}", retries=RETRIES)
        await user.should_not_see(kind=ui.button, content="Promote")
        await user.should_not_see(kind=ui.button, content="Roll back")


async def test_the_api_promotes_refuses_and_rolls_back(web: Web, registered) -> None:  # type: ignore[no-untyped-def]
    name, _ = registered
    await web.add_user("root", "admin")
    client = await web.user_client("root")
    listed = (await client.get("/models/")).json()
    assert [(m["version"], m["status"]) for m in listed] == [("v1", "production"), ("v2", "candidate")]
    refused = await client.post(f"/models/{name}/promote", json={"version": "v9"})
    assert refused.status_code == 409 and "unknown version 'v9'" in refused.json()["detail"]
    promoted = await client.post(f"/models/{name}/promote", json={"version": "v2"})
    assert promoted.status_code == 200 and promoted.json()["promoted_by"] == "web:root"
    back = await client.post(f"/models/{name}/rollback")
    assert back.status_code == 200 and back.json()["version"] == "v1"
    assert await _versions(web, name) == {"v1": "production", "v2": "retired"}
