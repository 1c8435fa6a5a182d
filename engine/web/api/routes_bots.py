"""``/bots``: read for everyone signed in, start/stop for traders, create/edit/delete for admins.

A bot is its YAML file in ``WebContext.bots_dir``: create, edit and delete write that file (validated
first, written atomically) and the runtime's hot reload follows; the database row is kept beside it
for ids, status and history."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dsl import DiagnosticError
from engine.editor.files import create_file, file_for, is_safe_name, listed_files, read_mapping, replace_file
from engine.store.enums import BotMode, BotStatus
from engine.store.models import Bot
from engine.web.api.deps import DB, Ctx, Principal, Reader, address_of, require
from engine.web.api.paging import IdPath, Paging, fetch_page
from engine.web.api.schemas import BotIn, BotOut, BotPatch, BotStatusOut, CommandOut, Page
from engine.web.api.validation import StrictJsonRoute
from engine.web.auth.accounts import audit

__all__ = ["router"]

router = APIRouter(prefix="/bots", tags=["bots"], route_class=StrictJsonRoute)
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
async def create_bot(body: BotIn, principal: Admin, ctx: Ctx, db: DB, request: Request) -> Bot:
    """Write ``<bots dir>/<name>.yaml`` once the text validates (hot reload starts following it);
    422 with the diagnostics (``file:line:col: error[CODE]: message``) otherwise."""
    path = _file_of_name(ctx, body.name)
    if (
        path.exists()
        or await db.scalar(select(Bot.id).where(Bot.name == body.name)) is not None
        or await asyncio.to_thread(_named_in_files, ctx.bots_dir, body.name)
    ):
        raise HTTPException(status.HTTP_409_CONFLICT, "a bot with this name exists")
    await _refuse_invalid(path, body.yaml, body.name)
    bot = Bot(
        name=body.name,
        mode=_mode_of(body.yaml),
        account=body.account,
        config_path=str(path),
        config_hash="",
        status=BotStatus.STOPPED,
    )
    db.add(bot)
    await db.flush()
    await audit(
        db,
        "bot.create",
        user_id=principal.user.id,
        target=f"bot:{bot.id}",
        address=address_of(request),
        detail={"file": path.name},
    )
    await db.flush()
    try:
        create_file(path, body.yaml)
    except FileExistsError:
        raise HTTPException(status.HTTP_409_CONFLICT, "a bot with this name exists") from None
    return bot


@router.get("/{bot_id}", response_model=BotOut)
async def get_bot(bot_id: IdPath, _: Reader, db: DB) -> Bot:
    return await _bot(db, bot_id)


@router.patch("/{bot_id}", response_model=BotOut)
async def edit_bot(
    bot_id: IdPath, body: BotPatch, principal: Admin, ctx: Ctx, db: DB, request: Request
) -> Bot:
    """``yaml`` replaces the bot's file, ``mode`` sets its ``exchange.mode`` (comments kept); the new
    text is validated first and written atomically."""
    from engine.editor import EditableFile

    bot = await _bot(db, bot_id)
    changes = body.model_dump(exclude_unset=True)
    for key in ("mode", "yaml"):
        if key in changes and changes[key] is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{key} cannot be null")
    new_text: str | None = None
    path = _file_of_bot(ctx, bot)
    if "yaml" in changes or "mode" in changes:
        if path is None or not path.is_file():
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"bot {bot.name!r} has no file in the bots folder to change"
            )
        new_text = changes.get("yaml") or path.read_text(encoding="utf-8")
        if "mode" in changes:
            try:
                edit = EditableFile.from_text(path, new_text)
                edit.set(("exchange", "mode"), changes["mode"])
            except (DiagnosticError, ValueError) as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, _problems(exc)) from None
            new_text = edit.text()
        await _refuse_invalid(path, new_text, bot.name)
        bot.mode = _mode_of(new_text)
        bot.config_path = str(path)
    if "account" in changes:
        bot.account = changes["account"]
    await db.flush()
    await audit(
        db,
        "bot.edit",
        user_id=principal.user.id,
        target=f"bot:{bot.id}",
        address=address_of(request),
        detail={"fields": sorted(changes)},
    )
    await db.flush()
    if new_text is not None and path is not None:
        replace_file(path, new_text)
    return bot


@router.delete("/{bot_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_bot(bot_id: IdPath, principal: Admin, ctx: Ctx, db: DB, request: Request) -> Response:
    """Remove the bot's file (hot reload stops a running bot) and its row; a row with trading history,
    or of a bot still running, is kept (its history stays readable). Without a file to remove, a
    running bot or one with history is refused (409) as before."""
    bot = await _bot(db, bot_id)
    path = _file_of_bot(ctx, bot)
    has_file = path is not None and path.is_file()
    running = bot.status in (BotStatus.RUNNING, BotStatus.STARTING)
    if running and not has_file:
        raise HTTPException(status.HTTP_409_CONFLICT, "stop the bot before deleting it")
    row_deleted = False
    if not running:
        try:
            async with db.begin_nested():
                await db.delete(bot)
            row_deleted = True
        except IntegrityError:  # rows of its history refer to it
            if not has_file:
                raise HTTPException(
                    status.HTTP_409_CONFLICT, "this bot has trading history and cannot be deleted"
                ) from None
    await audit(
        db,
        "bot.delete",
        user_id=principal.user.id,
        target=f"bot:{bot_id}",
        address=address_of(request),
        detail={"file": path.name if has_file and path else None, "row_deleted": row_deleted},
    )
    await db.flush()
    if has_file and path is not None:
        path.unlink(missing_ok=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _file_of_name(ctx: Ctx, name: str) -> Path:
    try:
        return file_for(ctx.bots_dir, name)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def _file_of_bot(ctx: Ctx, bot: Bot) -> Path | None:
    """The bot's file in the bots folder: the one the runtime loaded it from when that is there (its
    stem may differ from the bot's name), else ``<name>.yaml``; None for a name that is no file name."""
    folder = ctx.bots_dir.resolve()
    if bot.config_path:
        loaded = Path(bot.config_path).resolve()
        if loaded.parent == folder and loaded.suffix in (".yaml", ".yml") and is_safe_name(loaded.stem):
            return loaded
    return file_for(ctx.bots_dir, bot.name) if is_safe_name(bot.name) else None


def _named_in_files(folder: Path, name: str) -> bool:
    """Another file already says ``bot: name`` (the runtime would refuse the second one)."""
    return any(read_mapping(p).get("bot") == name for p in listed_files(folder))


def _problems(exc: Exception) -> list[str] | str:
    if isinstance(exc, DiagnosticError):
        return [d.headline() for d in exc.diagnostics]
    return str(exc)


def _check_text(path: Path, text: str, name: str) -> list[str]:
    from dsl import Diagnostic
    from engine.config import display_path, parse_yaml
    from engine.editor import validate_text

    # Files are named relative to the folder above bots/ (bots/x.yaml), not by server paths.
    base = path.parent.parent
    problems = validate_text(path, text, kind="bot", relative_to=base)
    root = parse_yaml(text, display_path(path, base)).root
    node = root.get("bot") if root is not None and root.kind == "map" else None
    if node is not None and node.value != name:
        span = node.span(display_path(path, base))
        message = f"the file says `bot: {node.value}` but the bot is named {name!r}: they must be equal"
        problems.append(Diagnostic("EDT006", message, span))
    return [d.headline() for d in problems]


async def _refuse_invalid(path: Path, text: str, name: str) -> None:
    problems = await asyncio.to_thread(_check_text, path, text, name)
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems)


def _mode_of(text: str) -> BotMode:
    """The row's mode from the file's ``exchange.mode`` (a backtest-mode file shows as paper)."""
    from engine.config import parse_yaml

    root = parse_yaml(text, "<bot>").root
    exchange = root.get("exchange") if root is not None and root.kind == "map" else None
    mode = exchange.get("mode") if exchange is not None and exchange.kind == "map" else None
    value = mode.value if mode is not None else None
    return BotMode(value) if value in {m.value for m in BotMode} else BotMode.PAPER


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
