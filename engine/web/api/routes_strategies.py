"""``/strategies``: the strategy files of ``WebContext.strategies_dir``, read by everyone signed in,
written and deleted by admins (``strategies:write``). A file is addressed by its name (its stem), never
by a path; a text is written only when ``engine validate`` would accept it (with every bot that uses
it), atomically, so hot reload sees the old file or the new one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi import Path as PathParam

from engine.editor.files import bots_using, create_file, file_for, listed_files, read_mapping
from engine.editor.files import replace_file as write_file
from engine.web.api.deps import DB, Ctx, Principal, Reader, address_of, require
from engine.web.api.schemas import StrategyIn, StrategyOut, StrategySummary
from engine.web.api.validation import StrictJsonRoute
from engine.web.auth.accounts import audit

__all__ = ["router", "strategy_detail", "strategy_summary"]

router = APIRouter(prefix="/strategies", tags=["strategies"], route_class=StrictJsonRoute)
Admin = Annotated[Principal, require("strategies:write")]
Name = Annotated[str, PathParam(max_length=64, description="the strategy file's name without .yaml")]


def _text_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def strategy_summary(path: Path, bots_dir: Path, data: dict[str, Any] | None = None) -> dict[str, Any]:
    data = read_mapping(path) if data is None else data
    return {
        "name": path.stem,
        "file": path.name,
        "strategy": _text_or_none(data.get("strategy")),
        "description": _text_or_none(data.get("description")),
        "timeframe": _text_or_none(data.get("timeframe")),
        "used_by": [bot.name for bot in bots_using(path, bots_dir)],
    }


def strategy_detail(path: Path, bots_dir: Path) -> dict[str, Any]:
    """The file's text, its rules as blocks and its problems (blocking: compiles; run in a thread)."""
    from dsl import DiagnosticError
    from engine.editor import text_to_block, validate_text
    from engine.editor.rules import rule_slots

    text = path.read_text(encoding="utf-8")
    data = read_mapping(path)
    inputs = data.get("inputs")
    names = set(inputs) if isinstance(inputs, dict) else set()
    rules = []
    for slot in rule_slots(data, empty_sides=False):
        try:
            block: dict[str, Any] | None = text_to_block(slot.text, names).model_dump(mode="json")
        except DiagnosticError:
            block = None
        rules.append({"key": slot.key, "text": slot.text, "block": block})
    problems = validate_text(path, text, kind="strategy", relative_to=path.parent.parent)
    return {
        **strategy_summary(path, bots_dir, data),
        "text": text,
        "rules": rules,
        "diagnostics": [d.headline() for d in problems],
    }


def _path(ctx: Ctx, name: str) -> Path:
    try:
        return file_for(ctx.strategies_dir, name)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def _existing(ctx: Ctx, name: str) -> Path:
    path = _path(ctx, name)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no strategy named {name!r}")
    return path


@router.get("/", response_model=list[StrategySummary])
async def list_strategies(_: Reader, ctx: Ctx) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        return [strategy_summary(p, ctx.bots_dir) for p in listed_files(ctx.strategies_dir)]

    return await asyncio.to_thread(read)


@router.get("/{name}", response_model=StrategyOut)
async def get_strategy(name: Name, _: Reader, ctx: Ctx) -> dict[str, Any]:
    path = _existing(ctx, name)
    return await asyncio.to_thread(strategy_detail, path, ctx.bots_dir)


@router.put("/{name}", response_model=StrategyOut)
async def put_strategy(
    name: Name, body: StrategyIn, principal: Admin, ctx: Ctx, db: DB, request: Request, response: Response
) -> dict[str, Any]:
    """Create or replace the file with ``text`` once it validates (the bots that use it included);
    422 with ``detail`` the list of ``file:line:col: error[CODE]: message`` otherwise."""
    from engine.editor import validate_text

    path = _path(ctx, name)
    existed = path.is_file()
    dependents = bots_using(path, ctx.bots_dir) if existed else []
    # Messages name the file strategies/x.yaml (relative to the folder above), not by a server path.
    problems = await asyncio.to_thread(
        lambda: validate_text(
            path, body.text, kind="strategy", dependents=dependents, relative_to=path.parent.parent
        )
    )
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [d.headline() for d in problems])
    await audit(
        db,
        "strategy.write" if existed else "strategy.create",
        user_id=principal.user.id,
        target=f"strategy:{name}",
        address=address_of(request),
    )
    await db.flush()
    try:
        if existed:
            write_file(path, body.text)
        else:
            create_file(path, body.text)
    except FileExistsError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"strategy {name!r} was created meanwhile") from None
    if not existed:
        response.status_code = status.HTTP_201_CREATED
    return await asyncio.to_thread(strategy_detail, path, ctx.bots_dir)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_strategy(name: Name, principal: Admin, ctx: Ctx, db: DB, request: Request) -> Response:
    """Refused (409) while a bot file uses the strategy."""
    path = _existing(ctx, name)
    users = bots_using(path, ctx.bots_dir)
    if users:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"strategy {name!r} is used by {', '.join(b.name for b in users)}: change or delete those bots first",
        )
    await audit(
        db,
        "strategy.delete",
        user_id=principal.user.id,
        target=f"strategy:{name}",
        address=address_of(request),
    )
    await db.flush()
    path.unlink(missing_ok=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
