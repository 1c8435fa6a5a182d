"""``/trades/live``: new trades pushed over a WebSocket. HTTP middleware and dependencies do not guard
WebSockets, so this handler checks the access token (``?token=``) and the Origin itself, and checks the
session again before every push (a logout or revocation closes the socket)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from sqlalchemy import func, select

from engine.store.models import Trade
from engine.web.api.context import WebContext
from engine.web.api.deps import authenticate_access
from engine.web.api.schemas import TradeOut
from engine.web.api.validation import StrictJsonRoute

__all__ = ["POLL_SECONDS", "router"]

router = APIRouter(route_class=StrictJsonRoute)
POLL_SECONDS = 1.0


def origin_allowed(ws: WebSocket, ctx: WebContext) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:  # not a browser: no cross-site risk, the token alone decides
        return True
    if origin in ctx.allowed_origins:
        return True
    host = ws.headers.get("host", "")
    return urlsplit(origin).netloc == host


@router.websocket("/trades/live")
async def trades_live(ws: WebSocket, token: str = "") -> None:
    ctx: WebContext = ws.app.state.web
    if not origin_allowed(ws, ctx):
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="origin refused")
        return
    async with ctx.sessions() as db:
        principal = await authenticate_access(db, ctx, token) if token else None
        last_id = await db.scalar(select(func.max(Trade.id))) or 0
    if principal is None or "read" not in principal.permissions:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="not signed in")
        return
    await ws.accept()
    try:
        while True:
            async with ctx.sessions() as db:
                if await authenticate_access(db, ctx, token) is None:
                    await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="session ended")
                    return
                rows = (await db.scalars(select(Trade).where(Trade.id > last_id).order_by(Trade.id))).all()
            for row in rows:
                await ws.send_text(TradeOut.model_validate(row).model_dump_json())
                last_id = row.id
            await asyncio.sleep(POLL_SECONDS)
    except WebSocketDisconnect:
        return
