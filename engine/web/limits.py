"""Request body limits, enforced before anything reads the body.

FastAPI reads and parses a JSON body before it runs the route's dependencies, the sign-in check
included: without a limit, anyone could make the server hold a body of any size in memory just to
answer 401. This ASGI middleware answers 413 at once when the declared ``Content-Length`` is over the
route's limit, and stops reading (413) as soon as a body sent without a length (chunked) passes it.

The limits (docs/security.md, "Request limits"):

- bot and strategy files (``POST /bots/``, ``PATCH /bots/{id}``, ``PUT /strategies/{name}``): 2 MiB,
  room for the 200,000-character file limit even if every character is sent as a ``\\uXXXX`` escape;
- NiceGUI's socket fallback (``/_nicegui_ws/``, long polling): 1 MiB, engine.io's own buffer size;
- everything else (sign-in, keys, users, risk, commands): 64 KiB.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.middleware.body_limit import RequestBodyLimitResponder
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DEFAULT_LIMIT", "FILE_LIMIT", "LIMITS", "BodyLimit", "BodyLimitMiddleware", "limit_for"]

KIB, MIB = 1024, 1024 * 1024
DEFAULT_LIMIT = 64 * KIB
FILE_LIMIT = 2 * MIB


@dataclass(frozen=True)
class BodyLimit:
    methods: frozenset[str]
    prefix: str
    max_bytes: int


LIMITS: tuple[BodyLimit, ...] = (
    BodyLimit(frozenset({"POST", "PUT", "PATCH"}), "/bots", FILE_LIMIT),
    BodyLimit(frozenset({"PUT"}), "/strategies/", FILE_LIMIT),
    BodyLimit(frozenset({"POST"}), "/_nicegui_ws/", 1 * MIB),
)


def limit_for(method: str, path: str) -> int:
    """The body limit of a request, in bytes (the first matching entry of :data:`LIMITS`)."""
    for entry in LIMITS:
        if method in entry.methods and path.startswith(entry.prefix):
            return entry.max_bytes
    return DEFAULT_LIMIT


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["method"], scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            # Refused without reading a byte; the client learns the limit.
            response = PlainTextResponse(
                f"request body too large (at most {limit} bytes here)",
                status_code=413,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        # Counting as the body arrives: Starlette's responder raises once the total passes the limit
        # and answers 413 if no response has started (FastAPI re-raises it from its body parsing).
        await RequestBodyLimitResponder(self.app, limit)(scope, receive, send)
