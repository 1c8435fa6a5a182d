"""Orders and fills: intent before sending, fills applied once, quantities exact.

The life of an order, each step its own committed transaction (:func:`submit_order` does the first three):

1. :func:`save_order_intent` - the order gets its client order id and is saved as ``intent``. If this
   fails, nothing is sent.
2. :func:`mark_sent` - about to hand it to the exchange. After a crash, ``intent`` means "never sent"
   and ``sent`` means "look it up on the exchange by client id before doing anything".
3. :func:`mark_acknowledged` - the exchange answered with its order id: ``open``.
4. :func:`apply_fill` for every execution; :func:`mark_closed` for cancellation, rejection or failure.

Statuses only move forward, so a late acknowledgement cannot undo a fill that arrived before it, and a
fill reported twice (same exchange trade id) is recorded once. ``filled`` is the exact sum of the fills;
``cost`` and ``average_price`` are exact to 18 decimal places.

Functions that take a session neither commit nor roll back: the caller owns the transaction. They lock
the order row they change (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the transaction already
holds the write lock), so concurrent writers cannot lose an update.
"""

from __future__ import annotations

import decimal
import re
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store._sql import upsert_insert
from engine.store.enums import (
    ACTIVE_ORDER_STATUSES,
    FINAL_ORDER_STATUSES,
    OrderStatus,
    OrderType,
)
from engine.store.errors import OrderNotFoundError, StoreError
from engine.store.models import Fill, Order, utcnow
from engine.store.records import FillReport, OrderIntent
from engine.store.types import MONEY_CONTEXT, to_decimal

__all__ = [
    "CLIENT_ID_PREFIX",
    "SqliteOrderWriter",
    "apply_fill",
    "get_order",
    "insert_order_rows",
    "list_fills",
    "list_open_orders",
    "mark_acknowledged",
    "mark_closed",
    "mark_sent",
    "new_client_order_id",
    "order_intent_values",
    "save_order_intent",
    "stored_client_ids",
    "submit_order",
]

CLIENT_ID_PREFIX = "ye"
# Binance and most ccxt exchanges accept 1-36 characters from this set.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:/-]{1,36}$")
_PREFIX = re.compile(r"^[A-Za-z0-9]{1,4}$")
_RANK = {
    OrderStatus.INTENT: 0,
    OrderStatus.SENT: 1,
    OrderStatus.OPEN: 2,
    OrderStatus.PARTIALLY_FILLED: 3,
}
_FINAL_RANK = 4


def new_client_order_id(prefix: str = CLIENT_ID_PREFIX) -> str:
    """A fresh client order id: ``prefix`` (1-4 letters or digits, how reconciliation recognises our
    orders on the exchange) and 32 random hex digits, 36 characters at most."""
    if not _PREFIX.match(prefix):
        raise ValueError(f"client order id prefix must be 1-4 letters or digits, got {prefix!r}")
    return f"{prefix}{uuid.uuid4().hex}"


async def save_order_intent(session: AsyncSession, intent: OrderIntent) -> Order:
    """Insert the order as ``intent`` with its client order id (generated unless given)."""
    order = Order(**order_intent_values(intent))
    session.add(order)
    await session.flush()
    return order


def order_intent_values(intent: OrderIntent, status: OrderStatus = OrderStatus.INTENT) -> dict[str, Any]:
    """The checked column values of a new order row (what :func:`save_order_intent` inserts), for callers
    that insert many at once (:func:`insert_order_rows`). Raises ValueError on an invalid intent."""
    client_id = intent.client_order_id or new_client_order_id()
    if not _CLIENT_ID.match(client_id):
        raise ValueError(f"invalid client order id {client_id!r}: 1-36 of A-Z a-z 0-9 _ . : / -")
    amount = to_decimal(intent.amount)
    if amount <= 0:
        raise ValueError(f"order amount must be positive, got {amount}")
    price = _positive_or_none(intent.price, "price")
    stop_price = _positive_or_none(intent.stop_price, "stop price")
    if intent.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and price is None:
        raise ValueError(f"a {intent.type.value} order needs a price")
    if intent.type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT) and stop_price is None:
        raise ValueError(f"a {intent.type.value} order needs a stop price")
    return {
        "bot_id": intent.bot_id,
        "pair": intent.pair,
        "client_order_id": client_id,
        "side": intent.side,
        "type": intent.type,
        "amount": amount,
        "price": price,
        "stop_price": stop_price,
        "status": status,
        "filled": Decimal(0),
        "cost": Decimal(0),
        "fees": {},
        "reason": intent.reason,
        "signal_time": intent.signal_time,
    }


async def insert_order_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert many new orders (values from :func:`order_intent_values`) in one executemany statement:
    the order intents of every bot deciding on the same candle close, without an ORM flush per row.

    On SQLite the statement goes straight to the driver connection of the session's transaction, with
    the values converted by the columns' own bind processors (the same text SQLAlchemy would store):
    this is on the path from a candle close to its orders being sent, where SQLAlchemy's executemany
    cost ~3 ms for 25 rows and the driver takes ~0.7 ms."""
    if not rows:
        return
    connection = await session.connection()
    if connection.dialect.name != "sqlite":
        now = utcnow()
        await session.execute(insert(Order), [{"created_at": now, "updated_at": now, **row} for row in rows])
        return
    raw = await connection.get_raw_connection()
    await raw.driver_connection.executemany(*_sqlite_statement(connection.dialect, rows))  # type: ignore[union-attr]


def _sqlite_statement(dialect: Any, rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
    """The INSERT and its parameters for ``rows``, converted as SQLAlchemy would store them."""
    sql, columns = _sqlite_order_insert(dialect)
    now = utcnow()
    params = [
        tuple(v.get(name) if process is None else process(v.get(name)) for name, process in columns)
        for v in ({"created_at": now, "updated_at": now, **row} for row in rows)
    ]
    return sql, params


_SQLITE_INSERT: tuple[str, list[tuple[str, Any]]] | None = None


def _sqlite_order_insert(dialect: Any) -> tuple[str, list[tuple[str, Any]]]:
    """The INSERT of every orders column but the key, and each column's bind processor on SQLite."""
    global _SQLITE_INSERT
    if _SQLITE_INSERT is None:
        table = Order.__table__
        columns = [c for c in table.columns if not c.primary_key]
        names = ", ".join(dialect.identifier_preparer.quote(c.name) for c in columns)
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) VALUES ({marks})"
        # dialect_impl: the type as SQLite stores it (a TypeDecorator's load_dialect_impl, SQLite's DATETIME text)
        _SQLITE_INSERT = (
            sql,
            [(c.name, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in columns],
        )
    return _SQLITE_INSERT


async def stored_client_ids(session: AsyncSession, client_order_ids: list[str]) -> set[str]:
    """Which of these client order ids are stored already (one query)."""
    if not client_order_ids:
        return set()
    found = await session.execute(
        select(Order.client_order_id).where(Order.client_order_id.in_(client_order_ids))
    )
    return set(found.scalars())


def _positive_or_none(value: object, what: str) -> Decimal | None:
    if value is None:
        return None
    number = to_decimal(value)  # type: ignore[arg-type]
    if number <= 0:
        raise ValueError(f"order {what} must be positive, got {number}")
    return number


async def get_order(
    session: AsyncSession,
    *,
    client_order_id: str | None = None,
    exchange_order_id: str | None = None,
    bot_id: int | None = None,
    for_update: bool = False,
) -> Order | None:
    """The order with this client order id, else with this exchange order id (of ``bot_id``'s orders
    when given: exchange order ids are only unique per exchange)."""
    if client_order_id:
        order = await _one(session, [Order.client_order_id == client_order_id], for_update)
        if order is not None:
            return order
    if exchange_order_id:
        conditions = [Order.exchange_order_id == exchange_order_id]
        if bot_id is not None:
            conditions.append(Order.bot_id == bot_id)
        return await _one(session, conditions, for_update)
    return None


async def _one(session: AsyncSession, conditions: list[Any], for_update: bool) -> Order | None:
    query = select(Order).where(*conditions).order_by(Order.id).limit(2)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    found = (await session.execute(query)).scalars().all()
    if len(found) > 1:
        raise StoreError(
            f"orders {found[0].client_order_id!r} and {found[1].client_order_id!r} share an exchange order id "
            "(bots on different exchanges?): name the bot or the client order id"
        )
    return found[0] if found else None


async def _locked(session: AsyncSession, client_order_id: str) -> Order:
    order = await get_order(session, client_order_id=client_order_id, for_update=True)
    if order is None:
        raise OrderNotFoundError(f"client order id {client_order_id!r}")
    return order


def _rank(status: OrderStatus) -> int:
    return _FINAL_RANK if status in FINAL_ORDER_STATUSES else _RANK[status]


async def mark_sent(session: AsyncSession, client_order_id: str) -> Order:
    """``intent`` -> ``sent``. Later statuses are left as they are."""
    order = await _locked(session, client_order_id)
    if order.status == OrderStatus.INTENT:
        order.status = OrderStatus.SENT
        await session.flush()
    return order


async def mark_acknowledged(session: AsyncSession, client_order_id: str, exchange_order_id: str) -> Order:
    """Record the exchange's order id; ``intent``/``sent`` become ``open``. An acknowledgement that
    arrives after fills (or after the order ended) changes no status."""
    order = await _locked(session, client_order_id)
    _adopt_exchange_id(order, exchange_order_id)
    if _rank(order.status) < _rank(OrderStatus.OPEN):
        order.status = OrderStatus.OPEN
    await session.flush()
    return order


def _adopt_exchange_id(order: Order, exchange_order_id: str | None) -> None:
    if not exchange_order_id:
        return
    if order.exchange_order_id is None:
        order.exchange_order_id = exchange_order_id
    elif order.exchange_order_id != exchange_order_id:
        raise StoreError(
            f"order {order.client_order_id!r} already has exchange id {order.exchange_order_id!r}, "
            f"not {exchange_order_id!r}"
        )


async def mark_closed(
    session: AsyncSession, client_order_id: str, status: OrderStatus, *, error: str | None = None
) -> Order:
    """End an active order as ``cancelled``, ``rejected`` or ``failed`` (with the reason in ``error``).
    An order that already ended keeps its status."""
    if status not in (OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.FAILED):
        raise ValueError(f"mark_closed takes cancelled, rejected or failed, not {status.value}")
    order = await _locked(session, client_order_id)
    if order.status in ACTIVE_ORDER_STATUSES:
        order.status = status
        if error is not None:
            order.error = error
        await session.flush()
    return order


async def apply_fill(session: AsyncSession, fill: FillReport) -> bool:
    """Record one execution and update the order's totals. Returns False, changing nothing, when this
    trade id was already recorded for the order. Raises :class:`OrderNotFoundError` when neither id is
    known (the caller reconciles with the exchange and retries)."""
    order = await get_order(
        session,
        client_order_id=fill.client_order_id,
        exchange_order_id=fill.exchange_order_id,
        bot_id=fill.bot_id,
        for_update=True,
    )
    if order is None:
        names = [f"client order id {fill.client_order_id!r}"] if fill.client_order_id else []
        if fill.exchange_order_id:
            names.append(f"exchange order id {fill.exchange_order_id!r}")
        raise OrderNotFoundError(" or ".join(names))
    amount = to_decimal(fill.amount)
    price = to_decimal(fill.price)
    fee = to_decimal(fill.fee)
    if amount <= 0 or price <= 0:
        raise ValueError(f"fill {fill.trade_id!r}: amount and price must be positive, got {amount} @ {price}")
    if fee < 0:
        raise ValueError(f"fill {fill.trade_id!r}: negative fee {fee}")
    if fee and not fill.fee_currency:
        raise ValueError(f"fill {fill.trade_id!r}: a fee needs its currency")
    # Every refusal happens before the insert, so a caller that catches it cannot commit half a fill.
    _adopt_exchange_id(order, fill.exchange_order_id)

    insert = (
        upsert_insert(session, Fill.__table__)
        .values(
            order_id=order.id,
            exchange_trade_id=fill.trade_id,
            amount=amount,
            price=price,
            fee=fee,
            fee_currency=fill.fee_currency,
            time=fill.time,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["order_id", "exchange_trade_id"])
        .returning(Fill.__table__.c.id)
    )
    if (await session.execute(insert)).first() is None:
        return False

    with decimal.localcontext(MONEY_CONTEXT):
        order.filled = to_decimal(order.filled + amount)
        order.cost = to_decimal(order.cost + amount * price)
        order.average_price = to_decimal(order.cost / order.filled)
        if fee and fill.fee_currency:
            fees = dict(order.fees)
            fees[fill.fee_currency] = format(to_decimal(Decimal(fees.get(fill.fee_currency, "0")) + fee), "f")
            order.fees = fees
    if order.filled >= order.amount:
        if order.status == OrderStatus.FAILED:
            # Given up on (e.g. not found by its look-ups) and then filled after all: the exchange's
            # fills are the truth, and the failure's reason no longer describes the order.
            order.error = None
        if order.status != OrderStatus.FILLED:
            order.status = OrderStatus.FILLED
    elif order.status in ACTIVE_ORDER_STATUSES:
        order.status = OrderStatus.PARTIALLY_FILLED
    await session.flush()
    return True


async def list_fills(session: AsyncSession, order_id: int) -> list[Fill]:
    query = select(Fill).where(Fill.order_id == order_id).order_by(Fill.time, Fill.id)
    return list((await session.execute(query)).scalars())


async def list_open_orders(session: AsyncSession, bot_id: int | None = None) -> list[Order]:
    """Orders not yet ended (``intent``, ``sent``, ``open``, ``partially_filled``), oldest first; all
    bots when ``bot_id`` is None."""
    query = select(Order).where(Order.status.in_(sorted(ACTIVE_ORDER_STATUSES)))
    if bot_id is not None:
        query = query.where(Order.bot_id == bot_id)
    return list((await session.execute(query.order_by(Order.id))).scalars())


SendOrder = Callable[[Order], Awaitable[str | None]]


async def submit_order(
    factory: async_sessionmaker[AsyncSession], intent: OrderIntent, send: SendOrder
) -> Order:
    """Save the intent, mark it sent, call ``send`` (which places the order on the exchange with
    ``order.client_order_id`` and returns the exchange's order id, or None if it is not known yet), then
    record the acknowledgement. Each step commits before the next begins, so a failed save sends
    nothing. When ``send`` raises, the order stays ``sent`` and the exception propagates: whether the
    exchange has it is unknown until it is looked up by client id (never send it blindly again)."""
    async with factory() as session, session.begin():
        order = await save_order_intent(session, intent)
    async with factory() as session, session.begin():
        order = await mark_sent(session, order.client_order_id)
    exchange_order_id = await send(order)
    if exchange_order_id:
        async with factory() as session, session.begin():
            order = await mark_acknowledged(session, order.client_order_id, exchange_order_id)
    return order


class SqliteOrderWriter:
    """Inserts order rows on a connection of its own to a SQLite file, in one transaction and one trip to
    a worker thread: the order intents of a close, where SQLAlchemy's pooled async connection costs
    ~4 ms in round trips (BEGIN, executemany, COMMIT, reset) against ~2.7 ms here for 25 rows while 100
    bots run (bench/live.py). Same PRAGMAs as the engine's connections (``engine.store.db``), same stored
    text (the columns' bind processors)."""

    def __init__(self, path: str, dialect: Any) -> None:
        self.path = path
        self.dialect = dialect
        self._connection: Any = None

    @classmethod
    def for_factory(cls, factory: async_sessionmaker[AsyncSession]) -> SqliteOrderWriter | None:
        """A writer for the SQLite file behind ``factory``; None for another database or in memory."""
        engine = factory.kw.get("bind")
        url = getattr(engine, "url", None)
        if url is None or url.get_backend_name() != "sqlite":
            return None
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:") or url.query.get("mode") == "memory":
            return None
        return cls(database, engine.dialect)

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` (values from :func:`order_intent_values`) and commit; blocking (call it in a
        thread). On any error the transaction is rolled back and the error raised."""
        import sqlite3

        from engine.store.db import SQLITE_BUSY_TIMEOUT_MS

        if self._connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            self._connection = connection
        sql, params = _sqlite_statement(self.dialect, rows)
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(sql, params)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
