"""``/trades/live``: new trades pushed over a WebSocket. HTTP middleware and dependencies do not guard
WebSockets, so this handler checks the access token (``?token=``) and the Origin itself, and checks the
session again before every push and every ``POLL_SECONDS`` when idle (a logout or revocation closes the
socket). Trades and session checks come from one shared tail of the store per server
(:mod:`engine.web.trade_tail`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from engine.web.api.context import WebContext
from engine.web.api.deps import authenticate_access
from engine.web.api.validation import StrictJsonRoute
from engine.web.trade_tail import TradeTail

__all__ = ["POLL_SECONDS", "router"]

router = APIRouter(route_class=StrictJsonRoute)
POLL_SECONDS = 1.0  # how often the server's one tail checks the sessions and reads new trades


def origin_allowed(ws: WebSocket, ctx: WebContext) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:  # not a browser: no cross-site risk, the token alone decides
        return True
    if origin in ctx.allowed_origins:
        return True
    host = ws.headers.get("host", "")
    return urlsplit(origin).netloc == host


def _tail(ctx: WebContext) -> TradeTail:
    if ctx.trade_tail is None:
        ctx.trade_tail = TradeTail(ctx.sessions, interval=POLL_SECONDS)
    return ctx.trade_tail


@router.websocket("/trades/live")
async def trades_live(ws: WebSocket, token: str = "", after: int | None = None) -> None:
    """Each trade closed from now on, as JSON (``TradeOut``); with ``after`` (the last trade id a page
    saw), first the ones it missed. One shared read of the store per server feeds every socket."""
    ctx: WebContext = ws.app.state.web
    if not origin_allowed(ws, ctx):
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="origin refused")
        return
    async with ctx.sessions() as db:
        principal = await authenticate_access(db, ctx, token) if token else None
    if principal is None or "read" not in principal.permissions:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="not signed in")
        return
    tail = _tail(ctx)
    sub = await tail.subscribe(principal.session_id, principal.user.role)
    await ws.accept()
    try:
        if after is not None and after < sub.start:
            for _, payload in await tail.backfill(after, sub.start):
                await ws.send_text(payload)
        while True:
            item = await sub.queue.get()
            # The tail checks every socket's session before each of its reads (one query for all).
            if sub.ended:
                await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="session ended")
                return
            if sub.dropped:
                await ws.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="too slow: reconnect with ?after=")
                return
            if item[0]:
                await ws.send_text(item[1])
    except WebSocketDisconnect:
        return
    finally:
        tail.unsubscribe(sub)
