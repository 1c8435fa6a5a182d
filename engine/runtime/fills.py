"""An order's fills in the terms of the kernel: average price, amount held or sold, and the fee valued
in the quote currency (a fee in the base asset reduces a buy's amount; one in a third asset, such as
BNB, is valued at a rate the caller looked up). Pure functions, used by the exchange execution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from engine.exchanges.base import ExchangeOrder, ExchangeTrade, MarketInfo

__all__ = ["FillSummary", "summarize_fills", "summarize_trades", "third_assets"]


@dataclass(frozen=True, slots=True)
class FillSummary:
    """What an order did, in the terms of the kernel: average price, base amount now held (or sold)
    and the fee in the quote currency."""

    price: float
    amount: float
    fee: float
    unvalued: tuple[str, ...] = ()  # fee assets without a price in the quote currency (counted as 0)


def summarize_fills(
    order: ExchangeOrder, market: MarketInfo | None, rates: Mapping[str, float | None] | None = None
) -> FillSummary | None:
    """The order's fills as one (price, amount, quote fee); None when nothing filled."""
    if order.trades:
        return summarize_trades(order.trades, order.side, market, rates)
    if order.filled <= 0 or order.average_price is None:
        return None
    return FillSummary(float(order.average_price), float(order.filled), 0.0)


def summarize_trades(
    trades: Sequence[ExchangeTrade],
    side: str,
    market: MarketInfo | None,
    rates: Mapping[str, float | None] | None = None,
) -> FillSummary | None:
    """Fills of one order as (average price, amount, quote fee); None when there are none. A fee paid in
    the base asset (Binance spot buys) reduces the amount held and is valued at the fill price; a fee in
    a third asset (BNB) is valued at ``rates[asset]`` (its price in the quote currency), and counts as 0,
    named in ``unvalued``, when that has no price."""
    filled = sum((t.amount for t in trades), Decimal(0))
    if filled <= 0:
        return None
    price = sum((t.amount * t.price for t in trades), Decimal(0)) / filled
    symbol = trades[0].symbol
    base = market.base if market else symbol.split("/")[0]
    quote = market.quote if market else symbol.split("/")[-1].split(":")[0]
    fee = Decimal(0)
    held = filled
    unvalued: list[str] = []
    for t in trades:
        if t.fee_asset == quote or not t.fee_asset:
            fee += t.fee
        elif t.fee_asset == base:
            fee += t.fee * t.price
            if side == "buy":
                held -= t.fee
        elif (rate := (rates or {}).get(t.fee_asset)) is not None:
            fee += t.fee * Decimal(repr(float(rate)))
        elif t.fee and t.fee_asset not in unvalued:
            unvalued.append(t.fee_asset)
    return FillSummary(float(price), float(held), float(fee), tuple(unvalued))


def third_assets(trades: Sequence[ExchangeTrade], market: MarketInfo | None) -> set[str]:
    """Fee assets of ``trades`` that are neither the market's base nor its quote (BNB)."""
    if not trades:
        return set()
    symbol = trades[0].symbol
    base = market.base if market else symbol.split("/")[0]
    quote = market.quote if market else symbol.split("/")[-1].split(":")[0]
    return {t.fee_asset for t in trades if t.fee and t.fee_asset and t.fee_asset not in (base, quote)}
