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
    return shared_tail(ctx.live_tails, ctx.reads(), source)


MAX_BATCH = 500  # rows in one message of a ``?batch=true`` socket


async def _follow(
    ws: WebSocket, token: str, after: int | None, source: TailSource, batch: bool = False
) -> None:
    ctx: WebContext = ws.app.state.web
    if not origin_allowed(ws, ctx):
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="origin refused")
        return
    async with ctx.reads()() as db:
        principal = await authenticate_access(db, ctx, token) if token else None
    if principal is None or "read" not in principal.permissions:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="not signed in")
        return
    tail = _tail(ctx, source)
    detail = "bots:control" in principal.permissions
    sub = await tail.subscribe(principal.session_id, principal.user.role, detail=detail)
    await ws.accept()
    # One task per socket notices the client leaving; waiting on rows alone, the handler of a vanished
    # client lived until the next row came, and held up the server's shutdown.
    gone = asyncio.ensure_future(_until_disconnect(ws))
    try:
        if after is not None and after < sub.start:
            await _send(ws, [payload for _, payload in await tail.backfill(sub, after)], batch)
        while True:
            items = await _next_items(sub, gone)
            if items is None:  # the client left (or the server shuts down)
                return
            # The tail checks every socket's session before each of its reads (one query for all).
            if sub.ended:
                await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="session ended")
                return
            if sub.dropped:
                await ws.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="too slow: reconnect with ?after=")
                return
            await _send(ws, [payload for row_id, payload in items if row_id], batch)
    except WebSocketDisconnect:
        return
    finally:
        gone.cancel()
        tail.unsubscribe(sub)


async def _until_disconnect(ws: WebSocket) -> None:
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass  # a client's message: nothing to answer


async def _next_items(sub: Subscriber, gone: asyncio.Future[None]) -> list[tuple[int, str]] | None:
    """What the subscriber's queue holds (waiting for at least one item), or None once the client left."""
    if sub.queue.empty():
        getter = asyncio.ensure_future(sub.queue.get())
        await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            return None
        items = [getter.result()]
    else:
        items = []
    while len(items) < MAX_BATCH and not sub.queue.empty():
        items.append(sub.queue.get_nowait())
    return items


async def _send(ws: WebSocket, payloads: list[str], batch: bool) -> None:
    if not payloads:
        return
    if batch:  # one message for what arrived together: a busy stream costs a message per read, not per row
        await ws.send_text("[" + ",".join(payloads) + "]")
        return
    for payload in payloads:
        await ws.send_text(payload)


@router.websocket("/trades/live")
async def trades_live(ws: WebSocket, token: str = "", after: int | None = None, batch: bool = False) -> None:
    """Each trade closed from now on, as JSON (``TradeOut``); with ``after`` (the last trade id a page
    saw), first the ones it missed. One shared read of the store per server feeds every socket. With
    ``batch=true`` each message is a JSON array of the rows that arrived together (every socket)."""
    await _follow(ws, token, after, TRADES, batch)


@router.websocket("/events/live")
async def events_live(ws: WebSocket, token: str = "", after: int | None = None, batch: bool = False) -> None:
    """Each event the runtime records from now on (trades, orders, risk blocks, limit changes, reloads,
    errors, bot starts and stops), as JSON (``EventOut``, plus ``data`` for TRADER and ADMIN); with
    ``after`` (the last event id a page saw), first the ones it missed."""
    await _follow(ws, token, after, EVENTS, batch)


@router.websocket("/candles/live")
async def candles_live(ws: WebSocket, token: str = "", after: int | None = None, batch: bool = False) -> None:
    """Each bot's candle close from now on, as JSON (``CandleOut``: the bot, the candle's open time,
    its equity and cash after it; ``bot_id`` null for the portfolio); with ``after`` (the last id a
    page saw), first the ones it missed. Prices and positions change at these moments."""
    await _follow(ws, token, after, CANDLES, batch)
