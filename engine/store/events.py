"""The event log an operator reads: trades, order changes, risk blocks, reloads, errors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.enums import EventCategory
from engine.store.models import Event, utcnow

__all__ = ["list_events", "record_event"]

# Trades and risk decisions are written to their log category here, where every one of them passes;
# reloads, orders, exchange calls and errors are logged by the code that handles them.
_LOGGED = {EventCategory.TRADE: "trades", EventCategory.RISK: "risk"}


async def record_event(
    session: AsyncSession,
    category: EventCategory,
    kind: str,
    message: str,
    *,
    bot_id: int | None = None,
    data: Mapping[str, Any] | None = None,
    time: datetime | None = None,
) -> Event:
    row = Event(
        time=time or utcnow(),
        bot_id=bot_id,
        category=category,
        kind=kind,
        message=message,
        data=dict(data) if data is not None else None,
    )
    session.add(row)
    await session.flush()
    if category in _LOGGED:
        from engine.observability import category_logger, log_event

        # Names log_event takes itself (or that this call passes) would clash with the data's keys.
        reserved = ("logger", "message", "bot", "pair", "mode", "kind", "bot_id", "level", "exc_info")
        fields = {k: v for k, v in (data or {}).items() if k not in reserved}
        known = data or {}
        log_event(
            category_logger(_LOGGED[category]),
            message,
            pair=known.get("pair"),
            mode=known.get("mode"),
            kind=kind,
            bot_id=bot_id,
            **fields,
        )
    return row


async def list_events(
    session: AsyncSession,
    *,
    bot_id: int | None = None,
    category: EventCategory | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Event]:
    """The newest ``limit`` events matching the filters, newest first."""
    query = select(Event)
    if bot_id is not None:
        query = query.where(Event.bot_id == bot_id)
    if category is not None:
        query = query.where(Event.category == category)
    if since is not None:
        query = query.where(Event.time >= since)
    query = query.order_by(Event.time.desc(), Event.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())
