"""The portfolio limits page at ``/risk``: what the running engine applies, and (ADMIN) a form to change it.

The limits are the ``engine run`` options of the same names (max exposure, max open trades, daily
loss limit, profit lock). A change is stored by :func:`engine.web.admin_actions.set_risk_limits`, the
same action as ``PUT /config/risk`` (same check, same audit entry); the running engine applies it from
its next candle and records a ``risk/limits_changed`` event naming who changed what. Where both are
given, the command line wins limit by limit (``engine.runtime.risk_settings``): the page shows which
limits the command line fixed and which web values it kept out. It re-reads when such an event is
committed (the server's shared events tail), so "applied" follows the engine without a reload.

Ratios are entered and shown in percent (``50`` is half the capital), the option values in ratios.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from engine.runtime.risk_settings import FIELDS
from engine.web import admin_actions
from engine.web.api.context import WebContext
from engine.web.live_tail import EVENTS
from engine.web.ui._tables import data_table
from engine.web.ui.live_updates import follow_store
from engine.web.ui.shell import action_user, allowed, client_address, frame, page_user

__all__ = ["LIMITS", "limit_rows", "read_form", "register"]

# name -> (label, unit: "%" for a ratio entered in percent, "" for a count)
LIMITS: dict[str, tuple[str, str]] = {
    "max_exposure": ("Max exposure (open positions, % of capital)", "%"),
    "max_open_trades": ("Max open trades (all bots)", ""),
    "daily_loss_limit": ("Daily loss limit (% of equity, UTC day)", "%"),
    "profit_lock_at": ("Profit lock arms at (% gain of all bots)", "%"),
    "profit_lock_keep": ("Profit lock keeps (% gain; no entries below once armed)", "%"),
}
COLUMNS = (
    ("limit", "Limit", False),
    ("asked", "Asked in the web app", False),
    ("applied", "Applied by the engine", False),
    ("source", "Set by", False),
)


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "no limit"
    return f"{float(value) * 100:g} %" if LIMITS[name][1] == "%" else str(int(value))


def limit_rows(stored: dict[str, Any], applied: dict[str, Any]) -> list[dict[str, str]]:
    """One row per limit: what the web app asked for, what the engine applies, and who set it."""
    asked = stored.get("limits") or {}
    in_force = applied.get("limits") or {}
    from_cli, ignored = set(applied.get("from_cli") or ()), set(applied.get("ignored") or ())
    rows = []
    for name in FIELDS:
        if not applied:
            source = "no engine has read the limits yet"
        elif name in ignored:
            source = "command line (the web value is kept out)"
        elif name in from_cli:
            source = "command line"
        else:
            source = "web app" if asked.get(name) is not None else "-"
        rows.append(
            {
                "limit": LIMITS[name][0],
                "asked": _shown(name, asked.get(name)),
                "applied": _shown(name, in_force.get(name)) if applied else "-",
                "source": source,
            }
        )
    return rows


def read_form(values: dict[str, Any]) -> dict[str, float | int | None]:
    """The limits from the form's fields (blank: no limit; percent fields to ratios); ``ValueError``
    with the field's label for anything that is not a number."""
    limits: dict[str, float | int | None] = {}
    for name, (label, unit) in LIMITS.items():
        raw = values.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            limits[name] = None
            continue
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{label}: {raw!r} is not a number") from None
        if unit == "%":
            limits[name] = number / 100
        elif number != int(number):
            raise ValueError(f"{label}: a whole number, got {raw}")
        else:
            limits[name] = int(number)
    return limits


class _RiskView:
    def __init__(self, ctx: WebContext, can_write: bool) -> None:
        self.ctx = ctx
        self.can_write = can_write
        self.table: Any = None
        self.changed: Any = None
        self.inputs: dict[str, Any] = {}
        self.message: Any = None

    async def build(self) -> None:
        ui.label(
            "The running engine applies these from its next candle and records who changed what (Logs, "
            "category risk). A limit given on the engine's command line wins over the web app's."
        ).classes("text-caption text-grey-7")
        self.table = data_table(COLUMNS, [], empty="").mark("risk-limits")
        self.changed = ui.label("").classes("text-caption").mark("risk-version")
        if self.can_write:
            ui.label("Change the limits").classes("text-h6")
            ui.label("Blank: no limit from the web app. Percent fields take 50 for half.").classes(
                "text-caption text-grey-7"
            )
            with ui.element("div").classes(
                "grid grid-cols-1 sm:grid-cols-2 gap-x-6 gap-y-2 w-full max-w-3xl"
            ):
                for name, (label, _unit) in LIMITS.items():
                    self.inputs[name] = ui.input(label).mark(f"risk-{name}")
            self.message = ui.label("").classes("text-negative").mark("risk-error")
            ui.button("Save limits", on_click=self.save).mark("risk-save")
        await ui.context.client.connected()
        await self.refresh(fill=True)
        await follow_store(self.ctx, self.refresh, tables=(EVENTS,))

    async def refresh(self, *, fill: bool = False) -> None:
        async with self.ctx.sessions() as db:
            stored, applied = await admin_actions.risk_settings(db)
        self.table.rows = limit_rows(stored, applied)
        self.table.update()
        version = stored.get("version")
        text = (
            f"Web app version {version}, by {stored.get('by')} at {stored.get('at')} UTC" if version else ""
        )
        if applied:
            text += ("; " if text else "") + f"the engine applies version {applied.get('version', 0)}"
        self.changed.set_text(text)
        if fill and self.inputs:
            asked = stored.get("limits") or {}
            for name, field in self.inputs.items():
                value = asked.get(name)
                unit = LIMITS[name][1]
                field.value = "" if value is None else (f"{value * 100:g}" if unit == "%" else str(value))

    async def save(self) -> None:
        admin = await action_user(self.ctx, "risk:write")
        if admin is None:
            return
        try:
            limits = read_form({name: field.value for name, field in self.inputs.items()})
            async with self.ctx.sessions() as db, db.begin():
                version = await admin_actions.set_risk_limits(
                    db, limits, user=admin, address=client_address()
                )
        except ValueError as exc:
            self.message.set_text(str(exc))
            return
        self.message.set_text("")
        ui.notify(f"Limits saved (version {version}): the engine applies them at its next candle")
        await self.refresh()


def register(ctx: WebContext) -> None:
    @ui.page("/risk")
    async def risk_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Portfolio risk limits"):
            await _RiskView(ctx, allowed(user, "risk:write")).build()
