"""The models page at ``/models`` (any signed-in role): the registry's models and versions with their
out-of-sample metrics, the latest feature drift and the recent model events; an ADMIN promotes a
version or rolls a model back.

Promotion and rollback go through :mod:`engine.web.admin_actions` (the same checks as ``engine ml
promote``/``rollback``: never files that are missing or changed since training; audited, and recorded
as ``ml/promoted`` / ``ml/rolled_back`` events). Running bots pick up the change at their next
registry read (``engine.ml.live``, within a minute). The page re-reads when events are committed
(retraining, drift, promotions from the command line or another browser).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd
from nicegui import ui
from sqlalchemy import select

from engine.ml.errors import MLError
from engine.store.models import Event, MLModel
from engine.web import admin_actions
from engine.web import formatting as fmt
from engine.web.api.context import WebContext
from engine.web.live_tail import EVENTS
from engine.web.ui._tables import data_table
from engine.web.ui.live_updates import follow_store
from engine.web.ui.shell import action_user, allowed, client_address, frame, page_user

__all__ = ["VERSION_COLUMNS", "drift_rows", "register", "version_row"]

VERSION_COLUMNS = (
    ("version", "Version", False),
    ("status", "Status", False),
    ("learner", "Learner", False),
    ("balanced_accuracy", "Balanced accuracy (out of sample)", False),
    ("baseline", "Naive baseline", False),
    ("data", "Trained on (UTC)", False),
    ("created", "Created (UTC)", False),
    ("promoted", "Promoted", False),
)
EVENT_COLUMNS = (("time", "Time (UTC)", True), ("kind", "Kind", True), ("message", "Message", False))
ML_EVENTS = 50
DRIFT_FEATURES = 12


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def version_row(row: MLModel) -> dict[str, str]:
    metrics = row.metrics or {}
    start, end = (pd.Timestamp(t, tz="UTC") for t in (row.data_start, row.data_end))
    return {
        "version": row.version,
        "status": row.status,
        "learner": row.learner,
        "balanced_accuracy": _number((metrics.get("model") or {}).get("balanced_accuracy")),
        "baseline": _number((metrics.get("baseline") or {}).get("balanced_accuracy")),
        "data": f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}",
        "created": fmt.when(row.created_at),
        "promoted": f"{row.promoted_by} {fmt.when(row.promoted_at)}" if row.promoted_at else "",
    }


def drift_rows(event: Event | None) -> list[dict[str, str]]:
    """The features of the latest ``ml/drift`` event, most drifted first (PSI: above 0.25 is major)."""
    psi = ((event.data or {}).get("psi") or {}) if event is not None else {}
    ranked = sorted(psi.items(), key=lambda kv: -(kv[1] or 0))[:DRIFT_FEATURES]
    return [
        {
            "feature": str(k),
            "psi": _number(v),
            "level": "major" if (v or 0) > 0.25 else "minor" if (v or 0) > 0.1 else "none",
        }
        for k, v in ranked
    ]


class _ModelsView:
    def __init__(self, ctx: WebContext, can_write: bool) -> None:
        self.ctx = ctx
        self.can_write = can_write
        self.box: Any = None
        self.events: Any = None

    async def build(self) -> None:
        ui.label(
            "Metrics are out of sample (walk-forward). Live rules read each model's production version; "
            "running bots pick up a promotion or rollback within a minute. Times are UTC."
        ).classes("text-caption text-grey-7")
        self.box = ui.column().classes("w-full gap-6")
        ui.label("Model events").classes("text-h6")
        self.events = data_table(EVENT_COLUMNS, [], empty="No model events yet.").mark("model-events")
        await ui.context.client.connected()
        await self.refresh()
        await follow_store(self.ctx, self.refresh, tables=(EVENTS,))

    async def refresh(self) -> None:
        async with self.ctx.sessions() as db:
            rows = list(
                (
                    await db.scalars(select(MLModel).order_by(MLModel.name, MLModel.created_at, MLModel.id))
                ).all()
            )
            events = list(
                (
                    await db.scalars(
                        select(Event)
                        .where(Event.kind.like("ml/%"))
                        .order_by(Event.id.desc())
                        .limit(ML_EVENTS)
                    )
                ).all()
            )
        by_model: dict[str, list[MLModel]] = defaultdict(list)
        for row in rows:
            by_model[row.name].append(row)
        self.box.clear()
        with self.box:
            if not by_model:
                ui.label("No models registered yet: `engine ml train models/NAME.yaml` trains one.").mark(
                    "models-none"
                )
            for name, versions in by_model.items():
                drift = next(
                    (e for e in events if e.kind == "ml/drift" and (e.data or {}).get("model") == name), None
                )
                self._model(name, versions, drift)
        self.events.rows = [
            {"id": e.id, "time": fmt.when(e.time), "kind": e.kind, "message": e.message} for e in events
        ]
        self.events.update()

    def _model(self, name: str, versions: list[MLModel], drift: Event | None) -> None:
        with ui.card().classes("w-full").mark(f"model-{name}"):
            ui.label(name).classes("text-h6")
            table = data_table(VERSION_COLUMNS, [version_row(v) for v in reversed(versions)], empty="")
            table.mark(f"versions-{name}")
            if drift is not None:
                ui.label(f"Feature drift, {fmt.when(drift.time)} UTC: {drift.message}").classes(
                    "text-caption"
                )
                data_table(
                    (("feature", "Feature", False), ("psi", "PSI", False), ("level", "Level", False)),
                    drift_rows(drift),
                    empty="",
                ).mark(f"drift-{name}")
            if not self.can_write:
                return
            others = [v.version for v in reversed(versions) if v.status != "production"]
            with ui.row().classes("items-end gap-4"):
                if others:
                    choice = ui.select(others, value=others[0], label="Version").classes("min-w-[12rem]")
                    choice.mark(f"promote-version-{name}")
                    ui.button("Promote", on_click=lambda n=name, c=choice: self.promote(n, c.value)).mark(
                        f"promote-{name}"
                    )
                if any(v.status == "production" for v in versions):
                    ui.button("Roll back", on_click=lambda n=name: self.rollback(n)).props("outline").mark(
                        f"rollback-{name}"
                    )

    async def promote(self, name: str, version: str) -> None:
        await self._act(
            name,
            lambda db, admin: admin_actions.promote_model(
                db, name, version, user=admin, address=client_address()
            ),
        )

    async def rollback(self, name: str) -> None:
        await self._act(
            name,
            lambda db, admin: admin_actions.rollback_model(db, name, user=admin, address=client_address()),
        )

    async def _act(self, name: str, action: Any) -> None:
        admin = await action_user(self.ctx, "models:write")
        if admin is None:
            return
        try:
            async with self.ctx.sessions() as db, db.begin():
                row = await action(db, admin)
        except MLError as exc:
            ui.notify(str(exc), type="negative", multi_line=True)
            return
        ui.notify(f"model {name}: version {row.version} in production")
        await self.refresh()


def register(ctx: WebContext) -> None:
    @ui.page("/models")
    async def models_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Models"):
            await _ModelsView(ctx, allowed(user, "models:write")).build()
