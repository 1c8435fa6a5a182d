"""The daily summary: once a day at a fixed UTC time, ask a provider for the last 24 hours and notify."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta

from engine.notify.events import DailySummary

__all__ = ["SummaryProvider", "next_daily_run", "run_daily_summaries"]

log = logging.getLogger("engine.notify")

# Given (since, until), returns the summary of that window, directly or as an awaitable.
SummaryProvider = Callable[[datetime, datetime], DailySummary | Awaitable[DailySummary]]


def next_daily_run(after: datetime, at: time) -> datetime:
    """The first moment strictly after ``after`` whose UTC time of day is ``at``."""
    after = after.astimezone(UTC) if after.tzinfo else after.replace(tzinfo=UTC)
    candidate = datetime.combine(after.date(), at.replace(tzinfo=None), tzinfo=UTC)
    return candidate if candidate > after else candidate + timedelta(days=1)


async def run_daily_summaries(
    notify: Callable[[DailySummary], None],
    provider: SummaryProvider,
    *,
    at: time,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run until cancelled. A failing provider is logged and tried again the next day."""
    last: datetime | None = None
    while True:
        current = now()
        run_at = next_daily_run(current if last is None else max(current, last), at)
        await sleep(max(0.0, (run_at - current).total_seconds()))
        last = run_at
        try:
            result = provider(run_at - timedelta(days=1), run_at)
            summary = await result if inspect.isawaitable(result) else result
            notify(summary)  # type: ignore[arg-type]
        except Exception:
            log.exception("cannot build the daily summary")
