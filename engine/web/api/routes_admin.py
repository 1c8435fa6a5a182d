"""``/config`` (risk settings, encrypted API keys shown masked) and ``/users`` (ADMIN only)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from sqlalchemy import select

from engine.store.models import ApiSecret, AuthSession, User
from engine.web import admin_actions
from engine.web.api.deps import DB, Ctx, Principal, Reader, address_of, require
from engine.web.api.paging import Paging, fetch_page
from engine.web.api.schemas import (
    ConfigOut,
    Page,
    RiskIn,
    RiskOut,
    SecretIn,
    SecretOut,
    SessionOut,
    UserIn,
    UserOut,
    UserPatch,
)
from engine.web.api.validation import StrictJsonRoute
from engine.web.auth.passwords import PasswordPolicyError

__all__ = ["config_router", "users_router"]

config_router = APIRouter(prefix="/config", tags=["config"], route_class=StrictJsonRoute)
users_router = APIRouter(prefix="/users", tags=["users"], route_class=StrictJsonRoute)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
SecretName = Annotated[str, Path(pattern=_NAME.pattern)]


async def _risk(db: DB) -> RiskOut | None:
    stored, applied = await admin_actions.risk_settings(db)
    if not stored and not applied:
        return None
    return RiskOut(
        limits=stored.get("limits") or {},
        version=int(stored.get("version", 0)),
        by=stored.get("by"),
        at=stored.get("at"),
        applied=applied or None,
    )


@config_router.get("/", response_model=ConfigOut)
async def get_config(_: Reader, db: DB) -> dict:
    secrets_rows = (await db.scalars(select(ApiSecret).order_by(ApiSecret.name))).all()
    return {"require_2fa": True, "risk": await _risk(db), "secrets": secrets_rows}


@config_router.put("/risk", response_model=RiskOut, responses={422: {"description": "invalid limits"}})
async def set_risk(
    body: RiskIn, principal: Annotated[Principal, require("risk:write")], db: DB, request: Request
) -> RiskOut:
    """Set the portfolio limits: the running engine applies them from its next candle (within a
    second) and records who changed what as a ``risk/limits_changed`` event. Limits given on the
    engine's command line win over these (docs/web.md); ``applied`` shows what the engine uses."""
    try:
        await admin_actions.set_risk_limits(
            db, body.model_dump(), user=principal.user, address=address_of(request)
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return await _risk(db)  # type: ignore[return-value]


@config_router.put("/secrets/{name}", response_model=SecretOut)
async def put_secret(
    name: SecretName,
    body: SecretIn,
    principal: Annotated[Principal, require("secrets:write")],
    ctx: Ctx,
    db: DB,
    request: Request,
) -> ApiSecret:
    """Store an exchange or OpenAI key encrypted; only its masked form is ever returned."""
    return await admin_actions.set_secret(
        db, ctx.box, name, body.kind, body.value, user_id=principal.user.id, address=address_of(request)
    )


@config_router.delete("/secrets/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_secret(
    name: SecretName, principal: Annotated[Principal, require("secrets:write")], db: DB, request: Request
) -> Response:
    found = await admin_actions.delete_secret(
        db, name, user_id=principal.user.id, address=address_of(request)
    )
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no secret named {name!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


UsersAdmin = Annotated[Principal, require("users:write")]


async def _user(db: DB, user_id: str) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    return user


@users_router.get("/", response_model=Page[UserOut])
async def list_users(_: UsersAdmin, db: DB, paging: Paging, active: bool | None = None) -> dict:
    query = select(User).order_by(User.username)
    if active is not None:
        query = query.where(User.active == active)
    return await fetch_page(db, query, paging)


@users_router.post("/", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, principal: UsersAdmin, db: DB, request: Request) -> User:
    try:
        return await admin_actions.create_user(
            db,
            body.username,
            body.email,
            body.password,
            body.role,
            by=principal.user.id,
            address=address_of(request),
        )
    except (PasswordPolicyError, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


@users_router.patch("/{user_id}", response_model=UserOut)
async def edit_user(user_id: str, body: UserPatch, principal: UsersAdmin, db: DB, request: Request) -> User:
    """Change a role or (de)activate; the user's sessions end at once."""
    user = await _user(db, user_id)
    try:
        return await admin_actions.edit_user(
            db, user, role=body.role, active=body.active, by=principal.user.id, address=address_of(request)
        )
    except admin_actions.SelfChangeError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@users_router.post("/{user_id}/reset-2fa", response_model=UserOut)
async def reset_2fa(user_id: str, principal: UsersAdmin, db: DB, request: Request) -> User:
    """Turn the user's 2FA off (lost phone): they enrol again at their next login. Sessions end."""
    user = await _user(db, user_id)
    return await admin_actions.reset_2fa(db, user, by=principal.user.id, address=address_of(request))


@users_router.get("/{user_id}/sessions", response_model=list[SessionOut])
async def list_sessions(user_id: str, _: UsersAdmin, db: DB) -> list[AuthSession]:
    rows = await db.scalars(
        select(AuthSession).where(AuthSession.user_id == user_id).order_by(AuthSession.created_at.desc())
    )
    return list(rows.all())


@users_router.delete("/{user_id}/sessions", response_model=dict[str, int])
async def revoke_user_sessions(
    user_id: str, principal: Annotated[Principal, require("sessions:revoke")], db: DB, request: Request
) -> dict[str, int]:
    count = await admin_actions.revoke_user_sessions(
        db, user_id, by=principal.user.id, address=address_of(request)
    )
    return {"revoked": count}
