"""The model's daily budget (calls, tokens, estimated USD) kept in the store, so it holds across
restarts and across every process and bot sharing the database.

A call first *reserves* an upper bound of what it can cost, in one write transaction that reads and
raises the day's totals (SQLite: ``BEGIN IMMEDIATE`` serialises writers; PostgreSQL: the day's row is
locked ``FOR UPDATE``). A reservation that would pass any limit is refused. After the call the
reservation is *settled* to the real usage, which is never above the bound. So concurrent callers can
never spend past a limit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store._sql import upsert_insert
from engine.store.models import SentimentBudget

__all__ = ["Budget", "BudgetLimits", "Reservation", "utc_day"]


def utc_day(ns: int | None = None) -> str:
    when = datetime.now(UTC) if ns is None else datetime.fromtimestamp(ns / 1e9, UTC)
    return when.strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    calls: int
    tokens: int
    cost_usd: float

    def describe(self) -> str:
        return f"{self.calls} calls, {self.tokens} tokens, ${self.cost_usd:g} a day"


@dataclass(frozen=True, slots=True)
class Reservation:
    day: str
    tokens: int
    cost_usd: float


class Budget:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], limits: BudgetLimits, clock=None):
        self.sessions = sessions
        self.limits = limits
        self.clock = clock

    def _day(self) -> str:
        return utc_day(self.clock() if self.clock else None)

    async def _row(self, session: AsyncSession, day: str) -> SentimentBudget:
        insert = upsert_insert(session, SentimentBudget.__table__)
        await session.execute(
            insert.values(day=day, calls=0, tokens=0, cost_usd=0.0).on_conflict_do_nothing()
        )
        row = await session.scalar(
            select(SentimentBudget)
            .where(SentimentBudget.day == day)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None
        return row

    async def reserve(self, tokens: int, cost_usd: float) -> Reservation | None:
        """Count one call of at most ``tokens`` and ``cost_usd``; None when that would pass a limit."""
        day = self._day()
        async with self.sessions() as session, session.begin():
            row = await self._row(session, day)
            if (
                row.calls + 1 > self.limits.calls
                or row.tokens + tokens > self.limits.tokens
                or row.cost_usd + cost_usd > self.limits.cost_usd + 1e-12
            ):
                return None
            row.calls += 1
            row.tokens += tokens
            row.cost_usd += cost_usd
        return Reservation(day, tokens, cost_usd)

    async def settle(self, reservation: Reservation, tokens: int, cost_usd: float) -> None:
        """Replace the reserved bound by the real usage (kept at most the bound)."""
        tokens = min(tokens, reservation.tokens)
        cost_usd = min(cost_usd, reservation.cost_usd)
        async with self.sessions() as session, session.begin():
            row = await self._row(session, reservation.day)
            row.tokens = max(0, row.tokens - reservation.tokens + tokens)
            row.cost_usd = max(0.0, row.cost_usd - reservation.cost_usd + cost_usd)

    async def spent(self, day: str | None = None) -> tuple[int, int, float]:
        async with self.sessions() as session:
            row = await session.scalar(
                select(SentimentBudget).where(SentimentBudget.day == (day or self._day()))
            )
        return (row.calls, row.tokens, row.cost_usd) if row else (0, 0, 0.0)
