"""Positions, closed trades, equity snapshots and paper balances of live and paper bots.

Like every repository function that takes a session, these flush but never commit: write the fill, the
position and the trade that result from one exchange event in one transaction, so a crash keeps all of
them or none.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store._sql import upsert_insert
from engine.store.enums import PositionStatus
from engine.store.models import Balance, EquitySnapshot, Position, Trade, utcnow
from engine.store.records import ClosedTrade, Number, PositionState
from engine.store.types import to_decimal

__all__ = [
    "close_position",
    "equity_before",
    "get_balances",
    "get_open_position",
    "list_equity",
    "list_open_positions",
    "list_trades",
    "record_trade",
    "set_balance",
    "snapshot_equity",
    "upsert_position",
]


def _optional(value: Number | None) -> Decimal | None:
    return None if value is None else to_decimal(value)


async def get_open_position(
    session: AsyncSession, bot_id: int, pair: str, *, for_update: bool = False
) -> Position | None:
    query = select(Position).where(
        Position.bot_id == bot_id, Position.pair == pair, Position.status == PositionStatus.OPEN
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalars().first()


async def upsert_position(session: AsyncSession, bot_id: int, state: PositionState) -> Position:
    """Create the bot's open position on ``state.pair`` or overwrite it with ``state``."""
    amount = to_decimal(state.amount)
    if amount <= 0:
        raise ValueError(f"position amount must be positive, got {amount}")
    position = await get_open_position(session, bot_id, state.pair, for_update=True)
    if position is None:
        position = Position(bot_id=bot_id, pair=state.pair, status=PositionStatus.OPEN)
        session.add(position)
    position.side = state.side
    position.amount = amount
    position.entry_price = to_decimal(state.entry_price)
    position.opened_at = state.opened_at
    position.stop = _optional(state.stop)
    position.take_profit = _optional(state.take_profit)
    position.trailing = dict(state.trailing) if state.trailing is not None else None
    await session.flush()
    return position


async def close_position(
    session: AsyncSession, bot_id: int, pair: str, closed_at: datetime
) -> Position | None:
    """Mark the bot's open position on ``pair`` closed; None when there is none."""
    position = await get_open_position(session, bot_id, pair, for_update=True)
    if position is None:
        return None
    position.status = PositionStatus.CLOSED
    position.closed_at = closed_at
    await session.flush()
    return position


async def list_open_positions(session: AsyncSession, bot_id: int | None = None) -> list[Position]:
    query = select(Position).where(Position.status == PositionStatus.OPEN)
    if bot_id is not None:
        query = query.where(Position.bot_id == bot_id)
    return list((await session.execute(query.order_by(Position.id))).scalars())


async def record_trade(
    session: AsyncSession, bot_id: int, trade: ClosedTrade, *, position_id: int | None = None
) -> Trade:
    row = Trade(
        bot_id=bot_id,
        position_id=position_id,
        pair=trade.pair,
        side=trade.side,
        open_time=trade.open_time,
        close_time=trade.close_time,
        open_price=to_decimal(trade.open_price),
        close_price=to_decimal(trade.close_price),
        amount=to_decimal(trade.amount),
        profit_ratio=float(trade.profit_ratio),
        profit_abs=to_decimal(trade.profit_abs),
        fees=to_decimal(trade.fees),
        exit_reason=trade.exit_reason,
    )
    session.add(row)
    await session.flush()
    return row


async def list_trades(
    session: AsyncSession, bot_id: int, *, since: datetime | None = None, limit: int | None = None
) -> list[Trade]:
    """The bot's closed trades in closing order (the last ``limit`` ones when given)."""
    query = select(Trade).where(Trade.bot_id == bot_id)
    if since is not None:
        query = query.where(Trade.close_time >= since)
    if limit is not None:
        newest = query.order_by(Trade.close_time.desc(), Trade.id.desc()).limit(limit)
        return sorted((await session.execute(newest)).scalars(), key=lambda t: (t.close_time, t.id))
    return list((await session.execute(query.order_by(Trade.close_time, Trade.id))).scalars())


async def snapshot_equity(
    session: AsyncSession, *, bot_id: int | None, time: datetime, equity: float, cash: float
) -> EquitySnapshot:
    """Record equity and cash at ``time``; ``bot_id=None`` is the whole portfolio."""
    row = EquitySnapshot(bot_id=bot_id, time=time, equity=float(equity), cash=float(cash))
    session.add(row)
    await session.flush()
    return row


async def equity_before(session: AsyncSession, bot_id: int, time: datetime) -> float | None:
    """The bot's equity at its last snapshot strictly before ``time``; None when it has none."""
    return (
        await session.execute(
            select(EquitySnapshot.equity)
            .where(EquitySnapshot.bot_id == bot_id, EquitySnapshot.time < time)
            .order_by(EquitySnapshot.time.desc(), EquitySnapshot.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def list_equity(
    session: AsyncSession, *, bot_id: int | None, since: datetime | None = None
) -> list[EquitySnapshot]:
    owner = EquitySnapshot.bot_id.is_(None) if bot_id is None else EquitySnapshot.bot_id == bot_id
    query = select(EquitySnapshot).where(owner)
    if since is not None:
        query = query.where(EquitySnapshot.time >= since)
    return list((await session.execute(query.order_by(EquitySnapshot.time, EquitySnapshot.id))).scalars())


async def set_balance(session: AsyncSession, account: str, asset: str, *, free: Number, used: Number) -> None:
    """Set a paper account's holding of ``asset`` (insert or overwrite in one statement)."""
    free_d, used_d = to_decimal(free), to_decimal(used)
    if free_d < 0 or used_d < 0:
        raise ValueError(f"{account}/{asset}: balances cannot be negative (free {free_d}, used {used_d})")
    now = utcnow()
    insert = upsert_insert(session, Balance.__table__).values(
        account=account, asset=asset, free=free_d, used=used_d, updated_at=now
    )
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["account", "asset"],
            set_={"free": insert.excluded.free, "used": insert.excluded.used, "updated_at": now},
        )
    )


async def get_balances(session: AsyncSession, account: str) -> Mapping[str, tuple[Decimal, Decimal]]:
    """``{asset: (free, used)}`` of a paper account."""
    query = select(Balance).where(Balance.account == account).order_by(Balance.asset)
    return {b.asset: (b.free, b.used) for b in (await session.execute(query)).scalars()}
