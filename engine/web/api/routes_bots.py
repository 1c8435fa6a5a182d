"""``/bots``: read for everyone signed in, start/stop for traders, create/edit/delete for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy import select

from engine.store.enums import BotMode, BotStatus
from engine.store.models import Bot
from engine.web.api.deps import DB, Ctx, Principal, Reader, address_of, require
from engine.web.api.paging import IdPath, Paging, fetch_page
from engine.web.api.schemas import BotIn, BotOut, BotPatch, BotStatusOut, CommandOut, Page
from engine.web.auth.accounts import audit

__all__ = ["router"]

router = APIRouter(prefix="/bots", tags=["bots"])
Admin = Annotated[Principal, require("bots:write")]
Trader = Annotated[Principal, require("bots:control")]


async def _bot(db: DB, bot_id: IdPath) -> Bot:
    bot = await db.get(Bot, bot_id)
    if bot is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no bot with id {bot_id}")
    return bot


@router.get("/", response_model=Page[BotOut])
async def list_bots(
    _: Reader,
    db: DB,
    paging: Paging,
    status_is: Annotated[BotStatus | None, Query(alias="status")] = None,
    mode: BotMode | None = None,
    name: Annotated[str | None, Query(max_length=100, description="substring of the name")] = None,
) -> dict:
    query = select(Bot).order_by(Bot.id)
    if status_is is not None:
        query = query.where(Bot.status == status_is)
    if mode is not None:
        query = query.where(Bot.mode == mode)
    if name:
        query = query.where(Bot.name.contains(name, autoescape=True))
    return await fetch_page(db, query, paging)


@router.post("/", response_model=BotOut, status_code=status.HTTP_201_CREATED)
async def create_bot(body: BotIn, principal: Admin, db: DB, request: Request) -> Bot:
    if await db.scalar(select(Bot.id).where(Bot.name == body.name)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "a bot with this name exists")
    bot = Bot(
        name=body.name,
        mode=BotMode(body.mode),
        account=body.account,
        config_path=body.config_path,
        config_hash="",
        status=BotStatus.STOPPED,
    )
    db.add(bot)
    await db.flush()
    await audit(
        db, "bot.create", user_id=principal.user.id, target=f"bot:{bot.id}", address=address_of(request)
    )
    return bot


@router.get("/{bot_id}", response_model=BotOut)
async def get_bot(bot_id: IdPath, _: Reader, db: DB) -> Bot:
    return await _bot(db, bot_id)


@router.patch("/{bot_id}", response_model=BotOut)
async def edit_bot(bot_id: IdPath, body: BotPatch, principal: Admin, db: DB, request: Request) -> Bot:
    bot = await _bot(db, bot_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("mode", "") is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "mode cannot be null")
    for key, value in changes.items():
        setattr(bot, key, BotMode(value) if key == "mode" and value is not None else value)
    await db.flush()
    await audit(
        db,
        "bot.edit",
        user_id=principal.user.id,
        target=f"bot:{bot.id}",
        address=address_of(request),
        detail={"fields": sorted(changes)},
    )
    return bot


@router.delete("/{bot_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_bot(bot_id: IdPath, principal: Admin, db: DB, request: Request) -> Response:
    bot = await _bot(db, bot_id)
    if bot.status in (BotStatus.RUNNING, BotStatus.STARTING):
        raise HTTPException(status.HTTP_409_CONFLICT, "stop the bot before deleting it")
    await db.delete(bot)
    try:
        await db.flush()
    except Exception:  # rows of its history refer to it
        await db.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, "this bot has trading history and cannot be deleted"
        ) from None
    await audit(
        db, "bot.delete", user_id=principal.user.id, target=f"bot:{bot_id}", address=address_of(request)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _command(
    bot_id: IdPath, command: str, principal: Principal, ctx: Ctx, db: DB, request: Request
) -> object:
    await _bot(db, bot_id)
    row = await ctx.control.request(db, bot_id, command, user_id=principal.user.id)
    await audit(
        db, f"bot.{command}", user_id=principal.user.id, target=f"bot:{bot_id}", address=address_of(request)
    )
    return row


@router.post("/{bot_id}/start", response_model=CommandOut, status_code=status.HTTP_202_ACCEPTED)
async def start_bot(bot_id: IdPath, principal: Trader, ctx: Ctx, db: DB, request: Request) -> object:
    """Queue a start for the runtime (see docs/web.md, bot_commands)."""
    return await _command(bot_id, "start", principal, ctx, db, request)


@router.post("/{bot_id}/stop", response_model=CommandOut, status_code=status.HTTP_202_ACCEPTED)
async def stop_bot(bot_id: IdPath, principal: Trader, ctx: Ctx, db: DB, request: Request) -> object:
    return await _command(bot_id, "stop", principal, ctx, db, request)


@router.get("/{bot_id}/status", response_model=BotStatusOut)
async def bot_status(bot_id: IdPath, _: Reader, ctx: Ctx, db: DB) -> dict:
    bot = await _bot(db, bot_id)
    return {"bot": bot, "pending_commands": await ctx.control.pending(db, bot_id)}
