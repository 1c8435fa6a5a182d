"""Request and response models of the API. Responses never carry a secret: no password hash, no TOTP
secret (except once, at enrolment, to the user enrolling), no API key beyond its masked form."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.editor.files import NAME_PATTERN
from engine.web.auth.roles import Role

MAX_FILE_CHARS = 200_000

__all__ = [
    "BotIn",
    "BotOut",
    "BotPatch",
    "CloseIn",
    "CommandOut",
    "EventOut",
    "LoginBothIn",
    "LoginIn",
    "LoginOut",
    "Page",
    "PositionOut",
    "RiskIn",
    "RiskOut",
    "SecretIn",
    "SecretOut",
    "SessionOut",
    "SetupIn",
    "SetupOut",
    "StrategyIn",
    "StrategyOut",
    "StrategyRuleOut",
    "StrategySummary",
    "TokenOut",
    "TradeOut",
    "UserIn",
    "UserOut",
    "UserPatch",
    "VerifyIn",
]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page[T](BaseModel):
    items: list[T]
    total: int
    limit: int
    offset: int


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginBothIn(LoginIn):
    code: str = Field(min_length=1, max_length=32, description="the current 6-digit TOTP code")


class LoginOut(BaseModel):
    status: Literal["2fa_required", "2fa_setup_required"]
    pending_token: str
    expires_in: int


class SetupIn(BaseModel):
    pending_token: str | None = Field(default=None, max_length=4096)
    password: str | None = Field(
        default=None, max_length=1024, description="required when re-enrolling while signed in"
    )


class SetupOut(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class VerifyIn(BaseModel):
    pending_token: str = Field(max_length=4096)
    code: str = Field(min_length=1, max_length=32, description="6-digit TOTP code or a backup code")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    backup_codes: list[str] | None = None


class UserOut(_Out):
    id: str
    username: str
    email: str
    role: Role
    totp_enabled: bool
    active: bool
    last_login_at: datetime | None
    created_at: datetime


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    role: Role = Role.VIEWER


class UserPatch(BaseModel):
    role: Role | None = None
    active: bool | None = None


class SessionOut(_Out):
    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    address: str | None


class BotOut(_Out):
    id: int
    name: str
    mode: str
    account: str | None
    status: str
    last_error: str | None
    config_path: str | None
    created_at: datetime
    updated_at: datetime


class BotIn(BaseModel):
    """A new bot: its file ``<bots dir>/<name>.yaml`` is written with ``yaml`` once it validates."""

    name: str = Field(
        pattern=f"^{NAME_PATTERN}$",
        description="the file name without .yaml; the YAML's `bot:` must equal it",
    )
    yaml: str = Field(min_length=1, max_length=MAX_FILE_CHARS, description="the bot file's text")
    account: str | None = Field(default=None, max_length=100)


class BotPatch(BaseModel):
    """``yaml`` replaces the bot file (same `bot:` name); ``mode`` sets `exchange.mode` in it (comments
    kept); ``account`` is a database note only."""

    yaml: str | None = Field(default=None, min_length=1, max_length=MAX_FILE_CHARS)
    mode: Literal["paper", "testnet", "live"] | None = None
    account: str | None = Field(default=None, max_length=100)


class CommandOut(_Out):
    id: int
    bot_id: int
    command: str
    position_id: int | None
    status: str
    requested_at: datetime
    handled_at: datetime | None
    error: str | None


class BotStatusOut(BaseModel):
    bot: BotOut
    pending_commands: list[CommandOut]


class TradeOut(_Out):
    id: int
    bot_id: int
    pair: str
    side: str
    open_time: datetime
    close_time: datetime
    open_price: Decimal
    close_price: Decimal
    amount: Decimal
    profit_ratio: float
    profit_abs: Decimal
    fees: Decimal
    exit_reason: str


class PositionOut(_Out):
    id: int
    bot_id: int
    pair: str
    side: str
    amount: Decimal
    entry_price: Decimal
    stop: Decimal | None
    take_profit: Decimal | None
    status: str
    opened_at: datetime
    closed_at: datetime | None


class CloseIn(BaseModel):
    confirm: bool = Field(description="must be true: closing a position by hand is confirmed explicitly")


class CandleOut(_Out):
    """A bot's candle closed: its equity and cash after it (``bot_id`` None: the whole portfolio)."""

    id: int
    bot_id: int | None
    time: datetime  # the candle's open time
    equity: float
    cash: float


class EventOut(_Out):
    id: int
    time: datetime
    bot_id: int | None
    category: str
    kind: str
    message: str


class PerformanceOut(BaseModel):
    bot_id: int
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    profit_abs: Decimal
    fees: Decimal


class SecretIn(BaseModel):
    kind: Literal["exchange", "openai"]
    value: str = Field(min_length=1, max_length=4096)


class SecretOut(_Out):
    name: str
    kind: str
    masked: str
    updated_at: datetime
    updated_by: str | None


class ConfigOut(BaseModel):
    require_2fa: bool
    risk: RiskOut | None
    secrets: list[SecretOut]


class RiskIn(BaseModel):
    """The portfolio limits of the running engine (``engine run`` options of the same names); a field
    left out or null is no limit from the web app. The whole set replaces the previous one."""

    model_config = ConfigDict(extra="forbid")

    max_exposure: float | None = Field(
        default=None, description="open positions of all bots at most this ratio of their capital"
    )
    max_open_trades: int | None = Field(default=None, description="at most this many open positions")
    daily_loss_limit: float | None = Field(
        default=None, description="halt new entries after losing this ratio of equity today (UTC)"
    )
    profit_lock_at: float | None = Field(
        default=None, description="arm the profit lock once all bots gained this ratio"
    )
    profit_lock_keep: float | None = Field(
        default=None, description="once armed, no new entries while the gain is below this ratio"
    )


class RiskOut(BaseModel):
    limits: dict[str, Any] = Field(description="the limits asked for in the web app")
    version: int = Field(description="grows with each change; the engine reports the one it applied")
    by: str | None = None
    at: str | None = None
    applied: dict[str, Any] | None = Field(
        default=None,
        description="what the running engine applies (limits, version, from_cli: limits the command "
        "line fixed, which win; ignored: web values they override); null before an engine read it",
    )


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


class BackupCodesOut(BaseModel):
    backup_codes: list[str]


class StrategySummary(BaseModel):
    name: str = Field(description="the file name without .yaml (the name in /strategies/{name})")
    file: str
    strategy: str | None = Field(description="the file's `strategy:` value")
    description: str | None
    timeframe: str | None
    used_by: list[str] = Field(description="bot files that run this strategy")


class StrategyRuleOut(BaseModel):
    key: str = Field(description="where the rule is in the file, e.g. entry.long or confirm.long.0")
    text: str
    block: dict[str, Any] | None = Field(description="the rule as editor blocks; null on a syntax error")


class StrategyOut(StrategySummary):
    text: str
    rules: list[StrategyRuleOut]
    diagnostics: list[str] = Field(description="file:line:col: error[CODE]: message; [] when valid")


class StrategyIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_FILE_CHARS, description="the whole strategy file")
