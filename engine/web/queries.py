"""Read queries shared by the REST routes and the NiceGUI pages, so both show the same rows.

Query builders return a ``Select`` (the routes page it, the pages limit it); the other functions take an
open session and return rows or plain values. The equity arithmetic (portfolio sum, drawdown, P&L over
a period) is pure and works on ``(time, equity)`` points. Others may add functions at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.enums import EventCategory, PositionStatus
from engine.store.models import Bot, BotCommand, EquitySnapshot, Event, Position, Trade

__all__ = [
    "ALERT_KINDS",
    "PnL",
    "Point",
    "TradeTotals",
    "alerts_query",
    "bot_by_ref",
    "downsample",
    "drawdown",
    "equity_before",
    "equity_by_bot",
    "events_query",
    "first_equity_by_bot",
    "last_snapshot_times",
    "pending_by_bot",
    "pnl_since",
    "pnl_summary",
    "portfolio_pnl",
    "positions_query",
    "total_equity",
    "trade_totals",
    "trades_query",
]

Point = tuple[datetime, float]

# Event kinds worth an operator's attention beyond the whole risk and error categories.
ALERT_KINDS: Mapping[EventCategory, tuple[str, ...]] = {
    EventCategory.RELOAD: ("invalid", "failed", "error"),
    EventCategory.ORDER: ("rejected", "failed", "error", "invalid_order", "insufficient_funds"),
}


# ---- query builders (routes and pages) ---------------------------------------------------------


def trades_query(
    *,
    bot_id: int | None = None,
    pair: str | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
) -> Select[Any]:
    """Closed trades, newest close first; ``after_id`` keeps only rows added after one already seen."""
    query = select(Trade).order_by(Trade.close_time.desc(), Trade.id.desc())
    if bot_id is not None:
        query = query.where(Trade.bot_id == bot_id)
    if pair:
        query = query.where(Trade.pair == pair)
    if since is not None:
        query = query.where(Trade.close_time >= since)
    if after_id is not None:
        query = query.where(Trade.id > after_id)
    return query


def positions_query(
    *, bot_id: int | None = None, status: PositionStatus | None = PositionStatus.OPEN
) -> Select[Any]:
    query = select(Position).order_by(Position.id.desc())
    if bot_id is not None:
        query = query.where(Position.bot_id == bot_id)
    if status is not None:
        query = query.where(Position.status == status)
    return query


def events_query(
    *,
    bot_id: int | None = None,
    category: EventCategory | None = None,
    after_id: int | None = None,
) -> Select[Any]:
    """Events, newest first."""
    query = select(Event).order_by(Event.time.desc(), Event.id.desc())
    if bot_id is not None:
        query = query.where(Event.bot_id == bot_id)
    if category is not None:
        query = query.where(Event.category == category)
    if after_id is not None:
        query = query.where(Event.id > after_id)
    return query


def alerts_query(*, bot_id: int | None = None, after_id: int | None = None) -> Select[Any]:
    """Risk halts and blocks, errors, invalid reloads and refused orders, newest first."""
    wanted = [Event.category.in_([EventCategory.RISK, EventCategory.ERROR])]
    wanted += [and_(Event.category == cat, Event.kind.in_(kinds)) for cat, kinds in ALERT_KINDS.items()]
    query = events_query(bot_id=bot_id, after_id=after_id).where(or_(*wanted))
    return query


# ---- rows ----------------------------------------------------------------------------------------


async def bot_by_ref(db: AsyncSession, ref: str) -> Bot | None:
    """A bot by its id (all digits) or else by its exact name."""
    if ref.isdigit() and len(ref) < 19:
        bot = await db.get(Bot, int(ref))
        if bot is not None:
            return bot
    return await db.scalar(select(Bot).where(Bot.name == ref))


async def pending_by_bot(db: AsyncSession) -> dict[int, list[BotCommand]]:
    """Commands the runtime has not handled yet, per bot, oldest first."""
    rows = await db.scalars(select(BotCommand).where(BotCommand.status == "pending").order_by(BotCommand.id))
    out: dict[int, list[BotCommand]] = {}
    for row in rows:
        out.setdefault(row.bot_id, []).append(row)
    return out


async def equity_by_bot(
    db: AsyncSession, *, bot_id: int | None = None, after_id: int = 0, since: datetime | None = None
) -> tuple[dict[int, list[Point]], int]:
    """Each bot's equity snapshots in time order (portfolio rows with no bot are left out), from
    ``since`` on, and the largest snapshot id read (to ask only for newer rows next time)."""
    query = (
        select(EquitySnapshot.id, EquitySnapshot.bot_id, EquitySnapshot.time, EquitySnapshot.equity)
        .where(EquitySnapshot.bot_id.is_not(None), EquitySnapshot.id > after_id)
        .order_by(EquitySnapshot.time, EquitySnapshot.id)
    )
    if bot_id is not None:
        query = query.where(EquitySnapshot.bot_id == bot_id)
    if since is not None:
        query = query.where(EquitySnapshot.time >= since)
    series: dict[int, list[Point]] = {}
    last_id = after_id
    for row_id, owner, time, equity in (await db.execute(query)).all():
        series.setdefault(owner, []).append((time, float(equity)))
        last_id = max(last_id, row_id)
    return series, last_id


async def last_snapshot_times(db: AsyncSession) -> dict[int, datetime]:
    """Per bot, the time of its latest equity snapshot: the last candle it processed."""
    # One indexed look-up per bot (bot_id, time), not a scan of every snapshot: the dashboard's
    # timer asks this every few seconds.
    latest = (
        select(func.max(EquitySnapshot.time))
        .where(EquitySnapshot.bot_id == Bot.id)
        .correlate(Bot)
        .scalar_subquery()
    )
    rows = await db.execute(select(Bot.id, latest))
    return {owner: time for owner, time in rows.all() if time is not None}


async def first_equity_by_bot(db: AsyncSession) -> dict[int, float]:
    """Per bot, the equity of its first snapshot (what "all time" is measured from)."""
    first_id = (
        select(EquitySnapshot.id)
        .where(EquitySnapshot.bot_id == Bot.id)
        .order_by(EquitySnapshot.time, EquitySnapshot.id)
        .limit(1)
        .correlate(Bot)
        .scalar_subquery()
    )
    firsts = select(first_id.label("snapshot_id")).select_from(Bot).subquery()
    rows = await db.execute(
        select(EquitySnapshot.bot_id, EquitySnapshot.equity).join(
            firsts, EquitySnapshot.id == firsts.c.snapshot_id
        )
    )
    return {owner: float(equity) for owner, equity in rows.all()}


async def equity_before(db: AsyncSession, time: datetime) -> dict[int, float]:
    """Per bot, the equity of its last snapshot before ``time`` (bots with none are left out)."""
    last_id = (
        select(EquitySnapshot.id)
        .where(EquitySnapshot.bot_id == Bot.id, EquitySnapshot.time < time)
        .order_by(EquitySnapshot.time.desc(), EquitySnapshot.id.desc())
        .limit(1)
        .correlate(Bot)
        .scalar_subquery()
    )
    picked = select(last_id.label("snapshot_id")).select_from(Bot).subquery()
    rows = await db.execute(
        select(EquitySnapshot.bot_id, EquitySnapshot.equity).join(
            picked, EquitySnapshot.id == picked.c.snapshot_id
        )
    )
    return {owner: float(equity) for owner, equity in rows.all()}


@dataclass(frozen=True)
class TradeTotals:
    trades: int = 0
    wins: int = 0
    profit: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)

    @property
    def losses(self) -> int:
        return self.trades - self.wins

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None


async def trade_totals(db: AsyncSession, *, bot_id: int | None = None) -> dict[int, TradeTotals]:
    """Closed-trade totals per bot. Money is summed in Python with Decimal (exact on every back end)."""
    query = select(Trade.bot_id, Trade.profit_abs, Trade.fees)
    if bot_id is not None:
        query = query.where(Trade.bot_id == bot_id)
    totals: dict[int, TradeTotals] = {}
    for owner, profit, fees in (await db.execute(query)).all():
        t = totals.get(owner, TradeTotals())
        totals[owner] = TradeTotals(t.trades + 1, t.wins + (profit > 0), t.profit + profit, t.fees + fees)
    return dict(sorted(totals.items()))


# ---- equity arithmetic (pure) ------------------------------------------------------------------


def total_equity(series: Mapping[int, Sequence[Point]]) -> list[Point]:
    """The portfolio's equity over time: at every time any bot reported, the sum of each bot's latest
    equity so far (a bot counts from its first snapshot on)."""
    events = sorted(
        ((time, owner, equity) for owner, points in series.items() for time, equity in points),
        key=lambda e: e[0],
    )
    latest: dict[int, float] = {}
    curve: list[Point] = []
    for time, owner, equity in events:
        latest[owner] = equity
        total = sum(latest.values())
        if curve and curve[-1][0] == time:
            curve[-1] = (time, total)  # several bots at one candle: one point
        else:
            curve.append((time, total))
    return curve


def drawdown(curve: Iterable[Point]) -> list[Point]:
    """Fall from the running peak at each point, as a ratio of the peak (0 at a new high, -0.1 = 10% down)."""
    out: list[Point] = []
    peak = None
    for time, equity in curve:
        peak = equity if peak is None else max(peak, equity)
        out.append((time, equity / peak - 1.0 if peak > 0 else 0.0))
    return out


def pnl_since(curve: Sequence[Point], start: datetime) -> float | None:
    """Equity now minus equity at ``start``: the last point before ``start``, else the first one at or
    after it. None without points."""
    if not curve:
        return None
    before = [equity for time, equity in curve if time < start]
    base = before[-1] if before else next((e for t, e in curve if t >= start), curve[0][1])
    return curve[-1][1] - base


@dataclass(frozen=True)
class PnL:
    today: float | None
    week: float | None
    all_time: float | None
    as_of: datetime | None  # the time "now" means: the last point


def pnl_summary(curve: Sequence[Point], now: datetime | None = None) -> PnL:
    """P&L for the UTC day and the ISO week (from Monday 00:00 UTC) holding ``now`` (default: the last
    point, so a replayed history reads like a live one), and since the first point."""
    if not curve:
        return PnL(None, None, None, None)
    now = now or curve[-1][0]
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - timedelta(days=day.weekday())
    return PnL(pnl_since(curve, day), pnl_since(curve, week), curve[-1][1] - curve[0][1], now)


def portfolio_pnl(
    series: Mapping[int, Sequence[Point]],
    first: Mapping[int, float] | None = None,
    now: datetime | None = None,
) -> PnL:
    """P&L of several bots: the sum of each bot's P&L over the period, so a bot that starts during it
    adds its gains, not its capital. ``first`` gives each bot's first equity ever when ``series`` holds
    only recent points (default: its first point here). ``now`` defaults to the latest point."""
    active = {owner: points for owner, points in series.items() if points}
    if not active:
        return PnL(None, None, None, None)
    now = now or max(points[-1][0] for points in active.values())
    parts = [pnl_summary(points, now) for points in active.values()]
    first = first or {}
    all_time = sum(points[-1][1] - first.get(owner, points[0][1]) for owner, points in active.items())
    return PnL(
        sum(p.today for p in parts if p.today is not None),
        sum(p.week for p in parts if p.week is not None),
        all_time,
        now,
    )


def downsample(points: Sequence[Point], limit: int = 1500) -> list[Point]:
    """At most about ``limit`` evenly spaced points, the last one always kept (a browser chart needs no
    more than its width)."""
    if len(points) <= limit:
        return list(points)
    step = -(-len(points) // limit)
    out = list(points[::step])
    if out[-1] is not points[-1]:
        out.append(points[-1])
    return out
