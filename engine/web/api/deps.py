"""Request dependencies: the database session, the signed-in principal, and permission checks that
answer 401/403 (never a redirect) and audit every refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import AuthSession, User
from engine.web.api.context import WebContext
from engine.web.auth.accounts import audit
from engine.web.auth.roles import permissions_of
from engine.web.auth.tokens import TokenError

__all__ = ["DB", "Ctx", "Principal", "address_of", "authenticate_access", "current", "require"]

_bearer = HTTPBearer(auto_error=False)


def get_ctx(request: Request) -> WebContext:
    return request.app.state.web


Ctx = Annotated[WebContext, Depends(get_ctx)]


async def get_db(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    async with ctx.sessions() as db:
        yield db
        await db.commit()


DB = Annotated[AsyncSession, Depends(get_db)]


def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Principal:
    user: User
    session_id: str
    permissions: frozenset[str]


async def authenticate_access(db: AsyncSession, ctx: WebContext, token: str) -> Principal | None:
    """The principal of an access token whose session, user and role are still what the token says."""
    try:
        claims = ctx.keys.decode(token, "access")
    except TokenError:
        return None
    sess = await db.get(AuthSession, claims.get("sid"))
    user = await db.get(User, claims["sub"])
    if sess is None or user is None or sess.user_id != user.id or sess.revoked_at is not None:
        return None
    # The session's own end (7 days from sign-in) binds its access tokens too, not only the refresh.
    if sess.expires_at <= datetime.now(UTC):
        return None
    # A role change or deactivation acts at once, not when the 15-minute token runs out.
    if not user.active or user.role != claims.get("role") or not user.totp_enabled:
        return None
    return Principal(user, sess.id, permissions_of(user.role))


async def current(
    ctx: Ctx, db: DB, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    principal = await authenticate_access(db, ctx, credentials.credentials) if credentials else None
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not signed in or session ended",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


Current = Annotated[Principal, Depends(current)]


def require(permission: str):
    async def check(principal: Current, db: DB, request: Request) -> Principal:
        if permission not in principal.permissions:
            await audit(
                db,
                "refused",
                user_id=principal.user.id,
                target=f"{request.method} {request.url.path}"[:200],
                address=address_of(request),
                success=False,
                detail={"needs": permission},
            )
            await db.commit()
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"your role may not do this (needs {permission})")
        return principal

    return Depends(check)


Reader = Annotated[Principal, require("read")]
