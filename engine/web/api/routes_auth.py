"""``/auth``: password, then the second factor (enrolment on first login), refresh, logout."""

from __future__ import annotations

import io

from fastapi import APIRouter, HTTPException, Request, Response, status

from engine.store.models import User
from engine.web.api.context import REFRESH_COOKIE, WebContext
from engine.web.api.deps import DB, Ctx, Current, address_of
from engine.web.api.schemas import (
    BackupCodesOut,
    LoginBothIn,
    LoginIn,
    LoginOut,
    PasswordChangeIn,
    PasswordIn,
    SetupIn,
    SetupOut,
    TokenOut,
    VerifyIn,
)
from engine.web.api.validation import StrictJsonRoute
from engine.web.auth import accounts, lockout
from engine.web.auth.accounts import AuthError
from engine.web.auth.passwords import PasswordPolicyError
from engine.web.auth.tokens import ACCESS_TTL, PENDING_TTL, TokenError

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["auth"], route_class=StrictJsonRoute)
_UNAUTHORIZED = {401: {"description": "refused (same answer whatever was wrong)"}}


def _set_refresh(response: Response, ctx: WebContext, token: str) -> None:
    response.set_cookie(
        REFRESH_COOKIE,
        token,
        max_age=int(accounts.REFRESH_TTL.total_seconds()),
        path="/auth",
        httponly=True,
        secure=ctx.secure_cookies,
        samesite="strict",
    )


def _clear_refresh(response: Response, ctx: WebContext) -> None:
    response.delete_cookie(
        REFRESH_COOKIE, path="/auth", httponly=True, secure=ctx.secure_cookies, samesite="strict"
    )


async def _pending(db: DB, ctx: WebContext, token: str) -> tuple[User, dict]:
    """The user of a pending token not yet spent, and its claims."""
    try:
        claims = ctx.keys.decode(token, "pending")
    except TokenError:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in again") from None
    if ctx.spent_pending.spent(str(claims.get("jti"))):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in again")
    user = await db.get(User, claims["sub"])
    if user is None or not user.active:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in again")
    return user, claims


async def _pending_user(db: DB, ctx: WebContext, token: str) -> User:
    return (await _pending(db, ctx, token))[0]


@router.post("/login", response_model=LoginOut, responses=_UNAUTHORIZED)
async def login(body: LoginIn, request: Request, ctx: Ctx, db: DB) -> LoginOut:
    """Step 1: the password. Grants only a 5-minute pending token for the second factor."""
    try:
        user = await accounts.authenticate_password(
            db, body.username, body.password, address_of(request), ctx.throttle
        )
    except AuthError as exc:
        await db.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    pending = ctx.keys.issue("pending", {"sub": user.id}, PENDING_TTL)
    return LoginOut(
        status="2fa_required" if user.totp_enabled else "2fa_setup_required",
        pending_token=pending,
        expires_in=int(PENDING_TTL.total_seconds()),
    )


@router.post("/login-2fa", response_model=TokenOut, responses=_UNAUTHORIZED)
async def login_both_factors(
    body: LoginBothIn, request: Request, response: Response, ctx: Ctx, db: DB
) -> TokenOut:
    """Password and TOTP code in one request: a session at once. The only way in while the account is
    locked after failed attempts (an attacker can renew that lock, never use it to keep you out)."""
    address = address_of(request)
    try:
        user = await lockout.sign_in_with_both(
            db, body.username, body.password, body.code, box=ctx.box, address=address, throttle=ctx.throttle
        )
    except AuthError as exc:
        await db.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    issued = await accounts.open_session(db, user, ctx.keys, address)
    _set_refresh(response, ctx, issued.refresh_token)
    return TokenOut(access_token=issued.access_token, expires_in=int(ACCESS_TTL.total_seconds()))


@router.post(
    "/2fa/setup", response_model=SetupOut, responses={**_UNAUTHORIZED, 409: {"description": "2FA active"}}
)
async def setup_2fa(body: SetupIn, ctx: Ctx, db: DB) -> SetupOut:
    """Enrolment at first login: a new TOTP secret, shown this once (text and QR code). It becomes active
    only after ``/auth/2fa/verify`` with a correct code. To change an active 2FA, an admin resets it."""
    if not body.pending_token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in again")
    user = await _pending_user(db, ctx, body.pending_token)
    if user.totp_enabled:
        raise HTTPException(status.HTTP_409_CONFLICT, "two-factor authentication is already active")
    secret, uri = await accounts.begin_2fa_setup(db, user, ctx.box)
    return SetupOut(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri))


def qr_svg(text: str) -> str:
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


@router.post("/2fa/verify", response_model=TokenOut, responses=_UNAUTHORIZED)
async def verify_2fa(body: VerifyIn, request: Request, response: Response, ctx: Ctx, db: DB) -> TokenOut:
    """Step 2: a TOTP code (or a backup code). On success: an access token and the refresh cookie.
    The first successful code after set-up activates 2FA and returns 10 backup codes, shown once."""
    user, claims = await _pending(db, ctx, body.pending_token)
    address = address_of(request)
    backup_codes = None
    try:
        if user.totp_enabled:
            await accounts.verify_second_factor(db, user, body.code, ctx.box, address, ctx.throttle)
        else:
            backup_codes = await accounts.activate_2fa(db, user, body.code, ctx.box, address)
    except AuthError as exc:
        await db.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    # Spent on success: a second code (the next step's) must not open a second session with it.
    if not ctx.spent_pending.spend(str(claims.get("jti")), float(claims["exp"])):
        await db.rollback()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in again")
    issued = await accounts.open_session(db, user, ctx.keys, address)
    _set_refresh(response, ctx, issued.refresh_token)
    return TokenOut(
        access_token=issued.access_token,
        expires_in=int(ACCESS_TTL.total_seconds()),
        backup_codes=backup_codes,
    )


@router.post("/refresh", response_model=TokenOut, responses=_UNAUTHORIZED)
async def refresh(request: Request, response: Response, ctx: Ctx, db: DB) -> TokenOut:
    """Spend the refresh cookie for a new access token and a new cookie. Reusing a spent one ends the session."""
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "no refresh token")
    try:
        issued = await accounts.rotate_refresh(db, token, ctx.keys, address_of(request))
    except AuthError as exc:
        await db.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    _set_refresh(response, ctx, issued.refresh_token)
    return TokenOut(access_token=issued.access_token, expires_in=int(ACCESS_TTL.total_seconds()))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=_UNAUTHORIZED)
async def logout(principal: Current, request: Request, ctx: Ctx, db: DB) -> Response:
    """End this session now: its access token stops working at once, its refresh token too."""
    await accounts.revoke_sessions(db, principal.user.id, reason="logout", only=principal.session_id)
    await accounts.audit(db, "logout", user_id=principal.user.id, address=address_of(request))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_refresh(response, ctx)
    return response


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT, responses=_UNAUTHORIZED)
async def change_password(body: PasswordChangeIn, principal: Current, request: Request, db: DB) -> Response:
    """Change your password: the current one is asked again; your other sessions end."""
    try:
        await accounts.change_password(
            db,
            principal.user,
            body.current_password,
            body.new_password,
            keep_session=principal.session_id,
            address=address_of(request),
        )
    except AuthError as exc:
        await db.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    except PasswordPolicyError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/2fa/backup-codes", response_model=BackupCodesOut, responses=_UNAUTHORIZED)
async def new_backup_codes(body: PasswordIn, principal: Current, request: Request, db: DB) -> BackupCodesOut:
    """Ten new backup codes, shown once; the old ones stop working; your other sessions end."""
    try:
        codes = await accounts.regenerate_backup_codes(
            db, principal.user, body.password, keep_session=principal.session_id, address=address_of(request)
        )
    except AuthError as exc:
        await db.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    return BackupCodesOut(backup_codes=codes)
