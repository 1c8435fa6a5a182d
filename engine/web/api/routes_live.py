"""``/trades/live``, ``/events/live`` and ``/candles/live``: new trades, events and candle closes pushed
over a WebSocket. HTTP middleware and dependencies do not guard
WebSockets, so this handler checks the access token (``?token=``) and the Origin itself, and checks the
session again before every push and every ``POLL_SECONDS`` when idle (a logout or revocation closes the
socket; a client that leaves ends its handler at once). Rows and session checks come from one shared
tail of the store per server and table (:mod:`engine.web.live_tail`)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from engine.web.api.context import WebContext
from engine.web.api.deps import authenticate_access
from engine.web.api.validation import StrictJsonRoute
from engine.web.live_tail import (
    CANDLES,
    EVENTS,
    POLL_SECONDS,
    TRADES,
    StoreTail,
    Subscriber,
    TailSource,
    shared_tail,
)

__all__ = ["POLL_SECONDS", "router"]

router = APIRouter(route_class=StrictJsonRoute)


def origin_allowed(ws: WebSocket, ctx: WebContext) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:  # not a browser: no cross-site risk, the token alone decides
        return True
    if origin in ctx.allowed_origins:
        return True
    host = ws.headers.get("host", "")
    return urlsplit(origin).netloc == host


def _tail(ctx: WebContext, source: TailSource) -> StoreTail:
    return shared_tail(ctx.live_tails, ctx.sessions, source)


async def _follow(ws: WebSocket, token: str, after: int | None, source: TailSource) -> None:
    ctx: WebContext = ws.app.state.web
    if not origin_allowed(ws, ctx):
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="origin refused")
        return
    async with ctx.sessions() as db:
        principal = await authenticate_access(db, ctx, token) if token else None
    if principal is None or "read" not in principal.permissions:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="not signed in")
        return
    tail = _tail(ctx, source)
    detail = "bots:control" in principal.permissions
    sub = await tail.subscribe(principal.session_id, principal.user.role, detail=detail)
    await ws.accept()
    try:
        if after is not None and after < sub.start:
            for _, payload in await tail.backfill(sub, after):
                await ws.send_text(payload)
        while True:
            item = await _next_row(ws, sub)
            if item is None:  # the client left (or the server shuts down): nothing waits for a row
                return
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


async def _next_row(ws: WebSocket, sub: Subscriber) -> tuple[int, str] | None:
    """The subscriber's next item, or None once the client has gone. Waiting on the queue alone, a
    socket whose client vanished would live until the next row, and hold up the server's shutdown."""
    row = asyncio.ensure_future(sub.queue.get())
    gone = asyncio.ensure_future(ws.receive())
    try:
        while True:
            done, _ = await asyncio.wait({row, gone}, return_when=asyncio.FIRST_COMPLETED)
            if row in done:
                return row.result()
            if gone.result()["type"] == "websocket.disconnect":
                return None
            gone = asyncio.ensure_future(ws.receive())  # a client's message: nothing to answer
    finally:
        for task in (row, gone):
            task.cancel()


@router.websocket("/trades/live")
async def trades_live(ws: WebSocket, token: str = "", after: int | None = None) -> None:
    """Each trade closed from now on, as JSON (``TradeOut``); with ``after`` (the last trade id a page
    saw), first the ones it missed. One shared read of the store per server feeds every socket."""
    await _follow(ws, token, after, TRADES)


@router.websocket("/events/live")
async def events_live(ws: WebSocket, token: str = "", after: int | None = None) -> None:
    """Each event the runtime records from now on (trades, orders, risk blocks, limit changes, reloads,
    errors, bot starts and stops), as JSON (``EventOut``, plus ``data`` for TRADER and ADMIN); with
    ``after`` (the last event id a page saw), first the ones it missed."""
    await _follow(ws, token, after, EVENTS)


@router.websocket("/candles/live")
async def candles_live(ws: WebSocket, token: str = "", after: int | None = None) -> None:
    """Each bot's candle close from now on, as JSON (``CandleOut``: the bot, the candle's open time,
    its equity and cash after it; ``bot_id`` null for the portfolio); with ``after`` (the last id a
    page saw), first the ones it missed. Prices and positions change at these moments."""
    await _follow(ws, token, after, CANDLES)
