"""The order safety pipeline between the runtime, the state store and an exchange.

:func:`place_order`: save the intent (committed; if that fails nothing is sent) -> mark it sent (committed)
-> ``exchange.create_order`` -> record the acknowledgement and any fills in one transaction. Temporary
errors are retried with exponential backoff and jitter (bounded; the same client order id every time, and
every exchange implementation answers a repeated client id with the order it already has). Operational
errors (invalid order, insufficient funds, authentication, wrong environment) are recorded on the order
(``rejected`` or ``failed`` with the reason) and raised. When the retries run out the order stays ``sent``:
whether the exchange has it is unknown, and :func:`reconcile` finds out.

:func:`reconcile`, when an engine starts: every order the store thinks is active is looked up on the
exchange by client id and its fills and final status applied; an ``intent`` (never sent) and an order the
exchange does not know after several checks are marked ``failed``; open exchange orders whose client id
has our prefix but which the store does not know (the engine stopped between sending and saving the
acknowledgement of an order the store lost) are adopted.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.exchanges.base import (
    Exchange,
    ExchangeOrder,
    ExchangeTrade,
    InsufficientFunds,
    InvalidOrder,
    OperationalExchangeError,
    OrderNotFound,
    OrderRequest,
    RateLimited,
    TemporaryExchangeError,
)
from engine.observability import category_logger
from engine.store import (
    FillReport,
    OrderIntent,
    OrderSide,
    OrderStatus,
    OrderType,
    apply_fill,
    get_order,
    list_open_orders,
    mark_acknowledged,
    mark_closed,
    mark_sent,
    save_order_intent,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["Placement", "ReconcileSummary", "apply_exchange_order", "place_order", "reconcile"]

log = category_logger("orders")


@dataclass(frozen=True, slots=True)
class Placement:
    """What :func:`place_order` did: the client id, the store status after it, the exchange's view of the
    order and the fills recorded now (not those recorded before)."""

    client_order_id: str
    status: OrderStatus
    order: ExchangeOrder
    new_fills: tuple[ExchangeTrade, ...]


@dataclass(slots=True)
class ReconcileSummary:
    """Client order ids by outcome, for the runtime to log as events."""

    checked: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)  # got fills while the engine was away
    cancelled: list[str] = field(default_factory=list)  # ended on the exchange (cancelled/rejected/expired)
    adopted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # never sent, or unknown to the exchange
    unreachable: list[str] = field(default_factory=list)  # exchange errors: left as they were, try again
    new_fills: list[ExchangeTrade] = field(default_factory=list)

    def messages(self) -> list[str]:
        parts = []
        for name in ("filled", "cancelled", "adopted", "failed", "unreachable"):
            ids = getattr(self, name)
            if ids:
                parts.append(f"{name}: {', '.join(ids)}")
        return parts


def _backoff(attempt: int, base: float, cap: float) -> float:
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay + random.uniform(0, delay / 2)


def _request(intent_id: str, intent: OrderIntent) -> OrderRequest:
    if intent.type == OrderType.STOP_LIMIT:
        raise InvalidOrder("stop_limit orders are not supported by the exchange layer")
    return OrderRequest(
        client_order_id=intent_id,
        symbol=intent.pair,
        side=intent.side.value,  # type: ignore[arg-type]
        type=intent.type.value,  # type: ignore[arg-type]
        amount=Decimal(str(intent.amount)),
        price=Decimal(str(intent.price)) if intent.price is not None else None,
        stop_price=Decimal(str(intent.stop_price)) if intent.stop_price is not None else None,
    )


async def place_order(
    factory: async_sessionmaker[AsyncSession],
    exchange: Exchange,
    intent: OrderIntent,
    *,
    retries: int = 4,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
) -> Placement:
    """Save, send and record one order (see the module docstring). Raises the exchange's error after
    recording it; a :class:`TemporaryExchangeError` after the retries leaves the order ``sent``."""
    async with factory() as session, session.begin():
        row = await save_order_intent(session, intent)
        client_id = row.client_order_id
    async with factory() as session, session.begin():
        await mark_sent(session, client_id)
    try:
        request = _request(client_id, intent)
        attempt = 0
        while True:
            try:
                placed = await exchange.create_order(request)
                break
            except TemporaryExchangeError as error:
                attempt += 1
                if attempt > retries:
                    log.warning(
                        "order %s: %s; giving up for now, reconciliation will look it up", client_id, error
                    )
                    raise
                delay = _backoff(attempt, base_delay, max_delay)
                if isinstance(error, RateLimited) and error.retry_after is not None:
                    delay = max(delay, error.retry_after)
                log.info("order %s: %s; retry %d in %.2fs", client_id, error, attempt, delay)
                await asyncio.sleep(delay)
    except OperationalExchangeError as error:
        status = (
            OrderStatus.REJECTED
            if isinstance(error, InvalidOrder | InsufficientFunds)
            else OrderStatus.FAILED
        )
        async with factory() as session, session.begin():
            await mark_closed(session, client_id, status, error=f"{type(error).__name__}: {error}")
        log.error("order %s %s: %s", client_id, status.value, error)
        raise
    async with factory() as session, session.begin():
        fills = await apply_exchange_order(session, client_id, placed)
        stored = await get_order(session, client_order_id=client_id)
        assert stored is not None
        status = stored.status
    return Placement(client_id, status, placed, tuple(fills))


async def apply_exchange_order(
    session: AsyncSession, client_order_id: str, order: ExchangeOrder
) -> list[ExchangeTrade]:
    """Record the exchange's view of one order in the caller's transaction: acknowledgement, fills not
    seen before (returned), and a final cancelled/rejected/expired state."""
    await mark_acknowledged(session, client_order_id, order.exchange_order_id)
    new: list[ExchangeTrade] = []
    for trade in order.trades:
        report = FillReport(
            trade.trade_id,
            trade.amount,
            trade.price,
            trade.time.to_pydatetime(),
            fee=trade.fee,
            fee_currency=trade.fee_asset or None,
            client_order_id=client_order_id,
            exchange_order_id=order.exchange_order_id,
        )
        if await apply_fill(session, report):
            new.append(trade)
    if order.state in ("cancelled", "expired"):
        await mark_closed(
            session,
            client_order_id,
            OrderStatus.CANCELLED,
            error=None if order.state == "cancelled" else "expired",
        )
    elif order.state == "rejected":
        await mark_closed(session, client_order_id, OrderStatus.REJECTED, error="rejected by the exchange")
    return new


async def reconcile(
    factory: async_sessionmaker[AsyncSession],
    exchange: Exchange,
    bot_id: int,
    client_prefix: str,
    *,
    symbols: Sequence[str] | None = None,
    checks: int = 3,
    check_delay: float = 1.0,
) -> ReconcileSummary:
    """Bring the store's view of ``bot_id``'s orders in line with the exchange (see the module docstring).
    ``symbols`` limits the look-up of unknown open orders (default: every symbol)."""
    summary = ReconcileSummary()
    async with factory() as session:
        active = [(o.client_order_id, o.pair, o.status) for o in await list_open_orders(session, bot_id)]
    for client_id, pair, status in active:
        summary.checked.append(client_id)
        if status == OrderStatus.INTENT:
            async with factory() as session, session.begin():
                await mark_closed(
                    session, client_id, OrderStatus.FAILED, error="never sent: the engine stopped first"
                )
            summary.failed.append(client_id)
            continue
        try:
            found = await _find(exchange, pair, client_id, checks, check_delay)
        except TemporaryExchangeError as error:
            log.warning("reconcile %s: %s", client_id, error)
            summary.unreachable.append(client_id)
            continue
        async with factory() as session, session.begin():
            if found is None:
                await mark_closed(
                    session,
                    client_id,
                    OrderStatus.FAILED,
                    error=f"not found on the exchange after {checks} checks",
                )
                summary.failed.append(client_id)
                continue
            fills = await apply_exchange_order(session, client_id, found)
        summary.new_fills += fills
        if found.state == "filled" or fills:
            summary.filled.append(client_id)
        if found.state in ("cancelled", "expired", "rejected"):
            summary.cancelled.append(client_id)

    known = {cid for cid, _pair, _status in active}
    try:
        on_exchange = await exchange.open_orders(symbols)
    except TemporaryExchangeError as error:
        log.warning("reconcile: open orders unavailable: %s", error)
        summary.unreachable.append("*open orders*")
        return summary
    for order in on_exchange:
        cid = order.client_order_id
        if not cid or not cid.startswith(client_prefix) or cid in known:
            continue
        async with factory() as session, session.begin():
            if await get_order(session, client_order_id=cid) is not None:
                continue  # ours but already ended in the store (another bot's, or a late report)
            await save_order_intent(
                session,
                OrderIntent(
                    bot_id,
                    order.symbol,
                    OrderSide(order.side),
                    OrderType(order.type),
                    order.amount,
                    price=order.price if order.type == "limit" else None,
                    stop_price=order.stop_price if order.type == "stop_market" else None,
                    reason="adopted",
                    client_order_id=cid,
                ),
            )
            await mark_sent(session, cid)
            summary.new_fills += await apply_exchange_order(session, cid, order)
        summary.adopted.append(cid)
    return summary


async def _find(
    exchange: Exchange, pair: str, client_id: str, checks: int, delay: float
) -> ExchangeOrder | None:
    for check in range(checks):
        if check:
            await asyncio.sleep(delay)
        try:
            return await exchange.fetch_order(pair, client_id)
        except OrderNotFound:
            continue
    return None
