"""Portfolio limits set in the web app (``PUT /config/risk``), applied by the running engine.

The web app stores the limits an ADMIN asked for in ``web_settings['risk']``: the five limits of
:class:`~engine.runtime.portfolio.PortfolioLimits` (checked by that class, the same check as the
``engine run`` options), a version that grows with each change, and who changed them. The runtime
reads that row at start and then every ``interval`` seconds (with the command queue); a new version is
applied between two candles (the runtime's one event loop: a candle's checks never see half a change),
so it holds from the next candle on, recorded as a ``risk/limits_changed`` event naming who changed
what. What the engine applies is written back to ``web_settings['risk.applied']`` for the web app to
show, with the limits the command line fixed.

Which wins when both are given: **the command line**, limit by limit (the profit lock's two values
count as one limit). Whoever started the engine with ``--max-open-trades 3`` set a bound the web app
cannot loosen; the limits the command line left open are the web app's to set. A web value the command
line overrides is reported (``ignored``) in the event and in ``risk.applied``. A combination that is
invalid once merged is refused (an ``error`` event) and the limits in force stay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from engine.runtime.portfolio import PortfolioLimits
from engine.store import EventCategory, record_event
from engine.store.models import WebSetting, utcnow

if TYPE_CHECKING:
    from engine.runtime.orchestrator import Runtime

__all__ = [
    "APPLIED_KEY",
    "FIELDS",
    "RISK_KEY",
    "Merged",
    "RiskSettings",
    "changes",
    "merge_limits",
]

log = logging.getLogger("engine.risk")

RISK_KEY = "risk"
APPLIED_KEY = "risk.applied"
FIELDS = ("max_exposure", "max_open_trades", "daily_loss_limit", "profit_lock_at", "profit_lock_keep")
# Limits that are set, or left open, together.
_GROUPS = (
    ("max_exposure",),
    ("max_open_trades",),
    ("daily_loss_limit",),
    ("profit_lock_at", "profit_lock_keep"),
)


@dataclass(frozen=True)
class Merged:
    limits: PortfolioLimits
    from_cli: tuple[str, ...]  # limits the command line fixed
    ignored: tuple[str, ...]  # web values the command line overrode


def merge_limits(cli: PortfolioLimits, web: Mapping[str, Any]) -> Merged:
    """The limits in force: the command line's where it gave one, else the web app's. Raises
    ValueError (the message of PortfolioLimits) when the merged set is invalid."""
    values: dict[str, Any] = {}
    from_cli: list[str] = []
    ignored: list[str] = []
    for group in _GROUPS:
        if any(getattr(cli, name) is not None for name in group):
            for name in group:
                values[name] = getattr(cli, name)
                from_cli.append(name)
                if web.get(name) is not None:
                    ignored.append(name)
        else:
            for name in group:
                values[name] = web.get(name)
    return Merged(PortfolioLimits(**values), tuple(from_cli), tuple(ignored))


def changes(old: PortfolioLimits, new: PortfolioLimits) -> dict[str, list[Any]]:
    """``{limit: [old, new]}`` for each limit that differs."""
    return {
        name: [getattr(old, name), getattr(new, name)]
        for name in FIELDS
        if getattr(old, name) != getattr(new, name)
    }


def _text(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


class RiskSettings:
    """Reads ``web_settings['risk']`` for one :class:`Runtime` and applies new versions."""

    def __init__(self, runtime: Runtime, *, interval: float = 0.5) -> None:
        self.runtime = runtime
        self.interval = interval
        self.version: int | None = None  # the last version handled (applied or refused)

    async def run(self) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the web app's risk settings failed; retrying")
            await asyncio.sleep(self.interval)

    async def poll(self) -> bool:
        """Apply the stored setting if its version is new; True when the limits in force changed."""
        async with self.runtime.factory() as session:
            row = await session.get(WebSetting, RISK_KEY)
            stored = dict(row.value) if row is not None else {}
        version = int(stored.get("version", 0))
        if version == self.version:
            return False
        self.version = version
        web = stored.get("limits") or {}
        runtime = self.runtime
        cli = runtime.config.limits
        try:
            merged = merge_limits(cli, web)
        except ValueError as error:
            await self._record(
                EventCategory.ERROR,
                "limits_refused",
                f"portfolio limits from the web app (version {version}, by {stored.get('by')}) not applied: "
                f"{error}; the limits in force stay",
                {"version": version, "by": stored.get("by"), "requested": web, "error": str(error)},
                applied=None,
            )
            return False
        old = runtime.portfolio.limits
        diff = changes(old, merged.limits)
        runtime.apply_limits(merged.limits)
        data = {
            "version": version,
            "by": stored.get("by"),
            "user_id": stored.get("user_id"),
            "changed": diff,
            "limits": asdict(merged.limits),
            "from_cli": list(merged.from_cli),
            "ignored": list(merged.ignored),
        }
        if diff or merged.ignored:
            what = "; ".join(f"{k} {_text(a)} -> {_text(b)}" for k, (a, b) in diff.items()) or "no change"
            if merged.ignored:
                what += f" (command line kept: {', '.join(merged.ignored)})"
            await self._record(
                EventCategory.RISK,
                "limits_changed",
                f"portfolio limits changed by {stored.get('by') or 'the web app'}: {what}",
                data,
                applied=data,
            )
        else:
            await self._write_applied(data)
        return bool(diff)

    async def _record(
        self, category: EventCategory, kind: str, message: str, data: dict, *, applied: dict | None
    ) -> None:
        (log.warning if category == EventCategory.ERROR else log.info)(message)

        async def work() -> None:
            async with self.runtime.factory() as session, session.begin():
                await record_event(session, category, kind, message, data=data)
                if applied is not None:
                    await _store_applied(session, applied)

        await self.runtime.write(work)

    async def _write_applied(self, data: dict) -> None:
        async def work() -> None:
            async with self.runtime.factory() as session, session.begin():
                await _store_applied(session, data)

        await self.runtime.write(work)


async def _store_applied(session, data: dict) -> None:  # type: ignore[no-untyped-def]
    value = {**data, "at": utcnow().isoformat()}
    row = await session.get(WebSetting, APPLIED_KEY)
    if row is None:
        session.add(WebSetting(key=APPLIED_KEY, value=value))
    else:
        row.value = value
