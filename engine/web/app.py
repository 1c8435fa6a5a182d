"""Building the web app: the context (database, keys, secret box), the FastAPI API, and the NiceGUI
app that serves the API and the pages on one port (``engine serve``)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store.db import create_engine_for, session_factory, upgrade_async
from engine.store.models import ApiSecret, User
from engine.web.api import (
    routes_admin,
    routes_auth,
    routes_bots,
    routes_data,
    routes_feeds,
    routes_live,
    routes_models,
    routes_news,
    routes_strategies,
)
from engine.web.api.context import WebContext
from engine.web.api.validation import validation_error_handler
from engine.web.auth.accounts import cleanup_expired
from engine.web.auth.crypto import SecretBox, SecretBoxError, load_secret_box
from engine.web.auth.tokens import TokenKeys
from engine.web.disconnects import outermost
from engine.web.headers import SecurityHeadersMiddleware
from engine.web.limits import BodyLimitMiddleware

__all__ = [
    "API_ROUTERS",
    "API_TITLE",
    "build_context",
    "check_secrets_readable",
    "cleanup_loop",
    "create_api",
    "include_api",
]

API_TITLE = "engine API"
API_ROUTERS = (
    routes_auth.router,
    routes_bots.router,
    routes_data.router,
    routes_admin.config_router,
    routes_admin.users_router,
    routes_live.router,
    routes_models.router,
    routes_strategies.router,
    routes_feeds.router,
    routes_news.router,
)


def include_api(app: FastAPI) -> None:
    """The API's routes on ``app`` (its own FastAPI app, or NiceGUI's), with the refusals of
    :mod:`engine.web.api.validation`, the body limits of :mod:`engine.web.limits` and the headers of
    :mod:`engine.web.headers`; a client leaving mid-request is no server error
    (:mod:`engine.web.disconnects`)."""
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    outermost(app)
    for router in API_ROUTERS:
        app.include_router(router)


def create_api(ctx: WebContext) -> FastAPI:
    """The REST/WebSocket API alone (tests, or mounting elsewhere)."""
    # No /docs or /redoc: FastAPI's pages load Swagger UI and ReDoc from a CDN (offline they break,
    # and nothing checks what the CDN serves). The OpenAPI document itself is served.
    app = FastAPI(title=API_TITLE, version="1", docs_url=None, redoc_url=None)
    app.state.web = ctx
    include_api(app)
    return app


async def check_secrets_readable(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
    """Refuse to start when the key does not open what is stored (a wrong or lost key)."""
    async with sessions() as db:
        token = await db.scalar(select(ApiSecret.ciphertext).limit(1))
        if token is None:
            token = await db.scalar(select(User.totp_secret).where(User.totp_secret.is_not(None)).limit(1))
    if token is not None:
        box.decrypt(token)


async def build_context(home: Path, url: str | None = None, *, secure_cookies: bool = True) -> WebContext:
    """Migrate the database, load (or create) the JWT key pair and the secret box, and check that the
    box opens the stored secrets. Raises SecretBoxError/TokenError with a clear message otherwise."""
    engine = create_engine_for(url)
    await upgrade_async(engine)
    sessions = session_factory(engine)
    keys = TokenKeys.load_or_create(home)
    box = load_secret_box(home)
    try:
        await check_secrets_readable(sessions, box)
    except SecretBoxError:
        await engine.dispose()
        raise
    return WebContext(sessions=sessions, keys=keys, box=box, secure_cookies=secure_cookies)


async def cleanup_loop(ctx: WebContext, every: float = 3600.0) -> None:
    """Delete expired and long-revoked sessions (and their refresh tokens) now and then, for ever."""
    log = logging.getLogger("engine.web")
    while True:
        try:
            async with ctx.sessions() as db, db.begin():
                removed = await cleanup_expired(db)
            if removed:
                log.info("removed %d expired sessions", removed)
        except Exception:  # a busy or briefly unreachable database must not end the loop
            log.exception("session clean-up failed; retrying later")
        await asyncio.sleep(every)
