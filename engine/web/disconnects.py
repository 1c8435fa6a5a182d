"""A browser that leaves mid-request is not a server error.

NiceGUI and the session cookie run as Starlette ``BaseHTTPMiddleware`` layers. When a client goes
away (a tab closed, a page left while one of its requests is in flight) before the answer starts,
such a layer's ``call_next`` raises ``RuntimeError("No response returned.")``; uvicorn then logs
"Exception in ASGI application" with a traceback, which reads like a crash to whoever watches the
log and hides real errors among them.

:func:`outermost` wraps the whole application (outside Starlette's error middleware, where the
exception would otherwise surface) and ends such a request quietly, only when the client has
verifiably disconnected and nothing was sent; any other exception is raised as before.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ClientGoneMiddleware", "outermost"]

log = logging.getLogger("engine.web")
_NO_RESPONSE = "No response returned."


class ClientGoneMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        disconnected = False
        started = False

        async def watched_receive() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, watched_receive, watched_send)
        except RuntimeError as exc:
            if not (disconnected and not started and str(exc) == _NO_RESPONSE):
                raise
            log.info("%s %s: the client left before the answer", scope.get("method"), scope.get("path"))


def outermost(app: Starlette) -> None:
    """Put :class:`ClientGoneMiddleware` around ``app``'s whole stack, error middleware included.

    ``add_middleware`` layers sit inside Starlette's error middleware, and NiceGUI adds its own
    layers when ``ui.run`` starts, after ours: only the built stack itself can be wrapped."""
    build = app.build_middleware_stack

    def build_wrapped() -> ASGIApp:
        return ClientGoneMiddleware(build())

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]
