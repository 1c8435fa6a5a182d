"""Read routes (trades, positions, logs, performance) and the one TRADER action on positions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from engine.store.enums import EventCategory, PositionStatus
from engine.web import admin_actions
from engine.web.api.deps import DB, Ctx, Principal, Reader, address_of, require
from engine.web.api.paging import IdPath, IdQuery, Paging, fetch_page
from engine.web.api.schemas import CloseIn, CommandOut, EventOut, Page, PerformanceOut, PositionOut, TradeOut
from engine.web.api.validation import StrictJsonRoute
from engine.web.queries import events_query, positions_query, trade_totals, trades_query

__all__ = ["router"]

router = APIRouter(route_class=StrictJsonRoute)
Pair = Annotated[str | None, Query(max_length=40)]


@router.get("/trades/", response_model=Page[TradeOut], tags=["trades"])
async def list_trades(
    _: Reader,
    db: DB,
    paging: Paging,
    bot_id: IdQuery = None,
    pair: Pair = None,
    since: datetime | None = None,
) -> dict:
    if since is not None and since.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since needs a time zone (e.g. ...Z)")
    query = trades_query(bot_id=bot_id, pair=pair, since=since)
    return await fetch_page(db, query, paging)


@router.get("/positions/", response_model=Page[PositionOut], tags=["positions"])
async def list_positions(
    _: Reader,
    db: DB,
    paging: Paging,
    bot_id: IdQuery = None,
    status_is: Annotated[PositionStatus | None, Query(alias="status")] = PositionStatus.OPEN,
) -> dict:
    query = positions_query(bot_id=bot_id, status=status_is)
    return await fetch_page(db, query, paging)


@router.post(
    "/positions/{position_id}/close",
    response_model=CommandOut,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["positions"],
)
async def close_position(
    position_id: IdPath,
    body: CloseIn,
    principal: Annotated[Principal, require("positions:close")],
    ctx: Ctx,
    db: DB,
    request: Request,
) -> object:
    """Ask the runtime to close an open position at market. ``confirm`` must be true."""
    if not body.confirm:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "confirm the close with confirm=true")
    row = await admin_actions.close_position(
        db, ctx.control, position_id, user_id=principal.user.id, address=address_of(request)
    )
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no open position with id {position_id}")
    return row


@router.get("/logs/", response_model=Page[EventOut], tags=["logs"])
async def list_logs(
    _: Reader, db: DB, paging: Paging, bot_id: IdQuery = None, category: EventCategory | None = None
) -> dict:
    query = events_query(bot_id=bot_id, category=category)
    return await fetch_page(db, query, paging)


@router.get("/performance/", response_model=list[PerformanceOut], tags=["performance"])
async def performance(_: Reader, db: DB, bot_id: IdQuery = None) -> list[PerformanceOut]:
    """Closed-trade totals per bot (exact Decimal sums)."""
    totals = await trade_totals(db, bot_id=bot_id)
    return [
        PerformanceOut(
            bot_id=bot,
            trades=t.trades,
            wins=t.wins,
            losses=t.losses,
            win_rate=t.win_rate,
            profit_abs=t.profit,
            fees=t.fees,
        )
        for bot, t in totals.items()
    ]
