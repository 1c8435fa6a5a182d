"""The tables of the engine's state, as typed SQLAlchemy 2 models.

Ledger quantities (order and fill amounts, prices, fees, balances, live positions and trades) are
``Decimal`` in a :class:`~engine.store.types.Money` column: they must add up exactly. Valuations and
statistics (equity snapshots, profit ratios, backtest results, which come from float64 arrays) are floats.
Times are timezone-aware UTC. Enumerations are stored as their values in VARCHAR columns.

The schema itself is created and changed only by the Alembic migrations in ``engine/store/migrations``;
a test checks that the migrations produce exactly these models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from engine.store.enums import (
    BotMode,
    BotStatus,
    EventCategory,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    PositionStatus,
)
from engine.store.types import JSONDoc, Money, UTCDateTime

__all__ = [
    "ApiSecret",
    "AuditEntry",
    "AuthSession",
    "BacktestRun",
    "BacktestTrade",
    "BackupCode",
    "Balance",
    "Base",
    "Bot",
    "BotCommand",
    "Checkpoint",
    "EngineLease",
    "EquitySnapshot",
    "Event",
    "FeedHealth",
    "FeedObservation",
    "Fill",
    "MLModel",
    "NewsItem",
    "Order",
    "Position",
    "RefreshToken",
    "SentimentBudget",
    "SentimentModelCache",
    "Trade",
    "User",
    "WebSetting",
    "utcnow",
]

# Stable constraint names, so later migrations can refer to (and drop) them on every back end.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT keys on PostgreSQL; SQLite only auto-increments a column declared INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(cls: type[StrEnum]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012  (SQLAlchemy reads it from the class)
        Decimal: Money(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDoc(),
        list[str]: JSONDoc(),
    }


class Bot(Base):
    """A configured bot as the runtime knows it; ``config_hash`` decides whether a reload restarts it."""

    __tablename__ = "bots"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    config_path: Mapped[str | None] = mapped_column(String(500))
    config_hash: Mapped[str] = mapped_column(String(64))
    mode: Mapped[BotMode] = mapped_column(_enum(BotMode))
    account: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[BotStatus] = mapped_column(_enum(BotStatus), default=BotStatus.STOPPED)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Order(Base):
    """One order, from the saved intent to its final status. ``filled``, ``cost``, ``average_price`` and
    ``fees`` are derived from the order's fills and only change when a new fill is applied."""

    __tablename__ = "orders"
    __table_args__ = (Index(None, "bot_id", "status"), Index(None, "exchange_order_id"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id"))
    pair: Mapped[str] = mapped_column(String(40))
    client_order_id: Mapped[str] = mapped_column(String(36), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(64))
    side: Mapped[OrderSide] = mapped_column(_enum(OrderSide))
    type: Mapped[OrderType] = mapped_column(_enum(OrderType))
    amount: Mapped[Decimal]
    price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]
    status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus), default=OrderStatus.INTENT)
    filled: Mapped[Decimal] = mapped_column(default=Decimal(0))
    cost: Mapped[Decimal] = mapped_column(default=Decimal(0))
    average_price: Mapped[Decimal | None]
    # Fees per currency as exact decimal strings ({"USDT": "0.0123", "BNB": "0.0001"}): fills may pay
    # fees in different currencies, which cannot be added together.
    fees: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    signal_time: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    fills: Mapped[list[Fill]] = relationship(back_populates="order", lazy="raise", order_by="Fill.id")


class Fill(Base):
    """One execution of an order. An exchange trade id is recorded once per order, whatever the number of
    times the exchange reports it."""

    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("order_id", "exchange_trade_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    exchange_trade_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    fee_currency: Mapped[str | None] = mapped_column(String(16))
    time: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="fills", lazy="raise")


class Position(Base):
    """A live or paper position. At most one open position per bot and pair (a partial unique index)."""

    __tablename__ = "positions"
    __table_args__ = (
        Index(
            "uq_positions_open_bot_pair",
            "bot_id",
            "pair",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id"))
    pair: Mapped[str] = mapped_column(String(40))
    side: Mapped[PositionSide] = mapped_column(_enum(PositionSide))
    amount: Mapped[Decimal]
    entry_price: Mapped[Decimal]
    stop: Mapped[Decimal | None]
    take_profit: Mapped[Decimal | None]
    trailing: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc())
    status: Mapped[PositionStatus] = mapped_column(_enum(PositionStatus), default=PositionStatus.OPEN)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Trade(Base):
    """A closed round trip of a live or paper bot (the columns of the backtester's trade list)."""

    __tablename__ = "trades"
    __table_args__ = (Index(None, "bot_id", "close_time"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id"))
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id"))
    pair: Mapped[str] = mapped_column(String(40))
    side: Mapped[PositionSide] = mapped_column(_enum(PositionSide))
    open_time: Mapped[datetime]
    close_time: Mapped[datetime]
    open_price: Mapped[Decimal]
    close_price: Mapped[Decimal]
    amount: Mapped[Decimal]
    profit_ratio: Mapped[float]
    profit_abs: Mapped[Decimal]
    fees: Mapped[Decimal]
    exit_reason: Mapped[str] = mapped_column(String(40))


class EquitySnapshot(Base):
    """Equity and cash of one bot at a time, or of the whole portfolio when ``bot_id`` is NULL."""

    __tablename__ = "equity_snapshots"
    __table_args__ = (Index(None, "bot_id", "time"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id"))
    time: Mapped[datetime]
    equity: Mapped[float]
    cash: Mapped[float]


class Event(Base):
    """Something worth showing an operator: a trade, an order change, a risk block, a reload, an error."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "time"), Index(None, "bot_id", "time"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    time: Mapped[datetime] = mapped_column(default=utcnow)
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id"))
    category: Mapped[EventCategory] = mapped_column(_enum(EventCategory))
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc())


class Balance(Base):
    """A paper exchange account's holding of one asset."""

    __tablename__ = "balances"
    __table_args__ = (UniqueConstraint("account", "asset"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account: Mapped[str] = mapped_column(String(100))
    asset: Mapped[str] = mapped_column(String(32))
    free: Mapped[Decimal]
    used: Mapped[Decimal]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EngineLease(Base):
    """Who may act for a name (an exchange account, the engine as a whole) until ``expires_at``.
    ``epoch`` grows on every change of owner: a fencing token an old owner can check it still holds."""

    __tablename__ = "engine_leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    epoch: Mapped[int] = mapped_column(BigInteger)
    acquired_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class BacktestRun(Base):
    """One backtest, stored so that runs can be listed and compared."""

    __tablename__ = "backtest_runs"
    __table_args__ = (Index(None, "bot_name", "created_at"), Index(None, "config_hash"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    bot_name: Mapped[str] = mapped_column(String(100))
    config_hash: Mapped[str] = mapped_column(String(64))
    strategy_name: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_start: Mapped[datetime]
    data_end: Mapped[datetime]
    timeframe: Mapped[str] = mapped_column(String(8))
    pairs: Mapped[list[str]]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trade_count: Mapped[int] = mapped_column(Integer, default=0)

    trades: Mapped[list[BacktestTrade]] = relationship(
        back_populates="run", lazy="raise", cascade="all, delete-orphan", order_by="BacktestTrade.id"
    )


class BacktestTrade(Base):
    """A trade of a stored backtest run, as the simulator computed it (floats)."""

    __tablename__ = "backtest_trades"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("backtest_runs.id", ondelete="CASCADE"), index=True)
    pair: Mapped[str] = mapped_column(String(40))
    side: Mapped[PositionSide] = mapped_column(_enum(PositionSide))
    open_time: Mapped[datetime]
    close_time: Mapped[datetime]
    open_price: Mapped[float]
    close_price: Mapped[float]
    amount: Mapped[float]
    profit_ratio: Mapped[float]
    profit_abs: Mapped[float]
    fees: Mapped[float]
    exit_reason: Mapped[str] = mapped_column(String(40))

    run: Mapped[BacktestRun] = relationship(back_populates="trades", lazy="raise")


# -- web app security (migration 0002) ------------------------------------------------------------------


class User(Base):
    """A person who may use the web app. ``role`` is viewer/trader/admin (engine.web.auth.roles.Role).
    ``totp_secret`` is ciphertext (engine.web.auth.crypto.SecretBox), never the secret itself;
    ``totp_last_step`` is the last accepted TOTP time step: only a later one is accepted (no replay)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuthSession(Base):
    """One signed-in session: a family of refresh tokens. Revoking it ends the session at once, the
    15-minute access tokens included (every request checks its session)."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index(None, "user_id", "revoked_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(64))


class RefreshToken(Base):
    """A refresh token of a session, by its SHA-256. A spent token presented again revokes the session."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    spent_at: Mapped[datetime | None]


class BackupCode(Base):
    """A single-use 2FA backup code, argon2-hashed."""

    __tablename__ = "backup_codes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None]


class ApiSecret(Base):
    """An exchange or OpenAI credential, encrypted; ``masked`` is all the app ever shows of it."""

    __tablename__ = "api_secrets"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    ciphertext: Mapped[str] = mapped_column(Text)
    masked: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(36))


class AuditEntry(Base):
    """Who did (or was refused) what, when, from where. Never holds a secret."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "time"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    time: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc())


class WebSetting(Base):
    """A web app setting changed at run time (e.g. ``require_2fa``)."""

    __tablename__ = "web_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONDoc())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BotCommand(Base):
    """A request from the web app to the runtime (start, stop, close_position), polled by the runtime.
    Contract in docs/web.md."""

    __tablename__ = "bot_commands"
    __table_args__ = (Index(None, "status", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id"))
    command: Mapped[str] = mapped_column(String(24))
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id"))
    requested_by: Mapped[str | None] = mapped_column(String(36))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    handled_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class Checkpoint(Base):
    """A running bot's kernel state after its last committed candle: one row per bot, replaced in the
    same transaction as that candle's orders and trades (``engine.runtime.checkpoint``)."""

    __tablename__ = "checkpoints"

    bot_id: Mapped[int] = mapped_column(Id, ForeignKey("bots.id"), primary_key=True)
    time: Mapped[int] = mapped_column(BigInteger)  # open time (ns) of the last committed candle
    pairs: Mapped[list[str]] = mapped_column(JSONDoc())
    timeframe: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(Text)  # the kernel's arrays, compressed npz as base64
    config_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FeedObservation(Base):
    """One point-in-time observation of an external series (``engine.feeds``): the time it describes and
    the first time a running bot could have known it, both int64 ns UTC. A re-fetch of the same value for
    the same time is a no-op (unique key); a revised value is a new row, visible from its own
    ``available_at``."""

    __tablename__ = "feed_observations"
    __table_args__ = (
        UniqueConstraint("series", "event_time", "value"),
        Index(None, "series", "available_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    series: Mapped[str] = mapped_column(String(200))
    event_time: Mapped[int] = mapped_column(BigInteger)
    available_at: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float]
    source: Mapped[str] = mapped_column(String(64))
    fetched_at: Mapped[int] = mapped_column(BigInteger)


class FeedHealth(Base):
    """The last known state of one feed source (``engine feeds status``, the web app, alerts)."""

    __tablename__ = "feed_health"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # ok | degraded | down
    last_success: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    down_since: Mapped[datetime | None]
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class NewsItem(Base):
    """One news item (``engine.sentiment``), stored once across sources: ``url_key`` is the canonical URL,
    ``title_key`` the normalised title used to find the same story from another outlet (``also_from``).
    Times are int64 ns UTC; ``available_at`` is when a running bot could have known the local score."""

    __tablename__ = "news_items"
    __table_args__ = (Index(None, "published_at"), Index(None, "title_key"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url_key: Mapped[str] = mapped_column(String(500), unique=True)
    title_key: Mapped[str] = mapped_column(String(300))
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(100))
    source_kind: Mapped[str] = mapped_column(String(24))
    external_id: Mapped[str | None] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(8))
    published_at: Mapped[int] = mapped_column(BigInteger)
    fetched_at: Mapped[int] = mapped_column(BigInteger)
    available_at: Mapped[int] = mapped_column(BigInteger)
    coins: Mapped[list[str]]
    also_from: Mapped[list[str]]
    local_score: Mapped[float] = mapped_column(Double)
    local_why: Mapped[str] = mapped_column(Text)
    model_score: Mapped[float | None] = mapped_column(Double)
    model_confidence: Mapped[float | None] = mapped_column(Double)
    model_at: Mapped[int | None] = mapped_column(BigInteger)
    model_why: Mapped[str | None] = mapped_column(Text)
    model_status: Mapped[str] = mapped_column(String(24))
    events: Mapped[list[str]]


class SentimentModelCache(Base):
    """The model's validated answer per (content hash, model): the same text is never paid for twice."""

    __tablename__ = "sentiment_model_cache"

    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    answer: Mapped[dict[str, Any]]
    created_at: Mapped[int] = mapped_column(BigInteger)


class SentimentBudget(Base):
    """Model calls, tokens and estimated cost spent per UTC day; reserved before each call."""

    __tablename__ = "sentiment_budget"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[float] = mapped_column(Double)


class MLModel(Base):
    """One trained model version in the registry (``engine.ml.registry``): its identity (spec hash and
    data range), where its files are, its out-of-sample metrics, and its status: candidate, production
    (at most one per name) or retired."""

    __tablename__ = "ml_models"
    __table_args__ = (UniqueConstraint("name", "version"), Index(None, "name", "status"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    spec_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    learner: Mapped[str] = mapped_column(String(16))
    data_start: Mapped[int] = mapped_column(BigInteger)  # first candle open time (ns) of the training data
    data_end: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))  # SHA-256 of the version's meta.json
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDoc())
    params: Mapped[dict[str, Any]] = mapped_column(JSONDoc())
    importance: Mapped[dict[str, Any]] = mapped_column(JSONDoc())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    promoted_by: Mapped[str | None] = mapped_column(String(100))
    promoted_at: Mapped[datetime | None]
