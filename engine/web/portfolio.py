"""What the dashboard and ``/positions`` read together, from the store: the open positions with their
current prices, each bot's quote currency, and the portfolio valued in one currency.

A bot's currency is the quote of its pairs (they share one): from its checkpoint (the pairs it runs),
else from a position or trade it stored. Conversion closes are read from the candle files in a worker
thread (:func:`engine.web.prices.conversion_series`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import Position, Trade
from engine.web.formatting import quote_currency
from engine.web.position_lines import PositionLine, position_line
from engine.web.prices import BotPrices, bot_prices, candle_sources, conversion_series, latest_rates
from engine.web.profit import DailyProfit, daily_profit
from engine.web.queries import Point, positions_query
from engine.web.valuation import PriceSeries, Rate, Valuation, value_portfolio

__all__ = [
    "VALUATION_CURRENCIES",
    "Rates",
    "bot_currencies",
    "conversion_rates",
    "load_positions",
    "newest",
    "realised_by_day",
    "valuate",
]

# Offered in the dashboard's "value in" choice (any currency of a bot is offered too).
VALUATION_CURRENCIES = ("USDT", "USDC", "BTC", "ETH", "EUR")


async def load_positions(
    db: AsyncSession, names: Mapping[int, str], *, bot_id: int | None = None
) -> tuple[list[PositionLine], dict[int, BotPrices]]:
    """The open positions, newest first, with each bot's last closes."""
    positions = list((await db.scalars(positions_query(bot_id=bot_id))).all())
    prices = await bot_prices(db)
    lines = [position_line(p, names.get(p.bot_id, str(p.bot_id)), prices.get(p.bot_id)) for p in positions]
    return lines, prices


async def bot_currencies(db: AsyncSession, prices: Mapping[int, BotPrices]) -> dict[int, str]:
    """Bot -> quote currency, for the bots whose pairs are known."""
    out = {owner: p.currency for owner, p in prices.items() if p.currency}
    stored = union_all(
        select(Trade.bot_id.label("bot_id"), func.max(Trade.pair).label("pair")).group_by(Trade.bot_id),
        select(Position.bot_id.label("bot_id"), func.max(Position.pair).label("pair")).group_by(
            Position.bot_id
        ),
    ).subquery()
    for owner, pair in (await db.execute(select(stored.c.bot_id, stored.c.pair))).all():
        out.setdefault(owner, quote_currency(pair))
    return out


def _series_for(currencies: Sequence[str], valuation: str, data_dir: Path | None) -> dict[str, PriceSeries]:
    sources = candle_sources(data_dir)
    out = {}
    for currency in currencies:
        if currency != valuation and (found := conversion_series(currency, valuation, sources)) is not None:
            out[currency] = found
    return out


@dataclass(frozen=True)
class Rates:
    """What converts a currency into the valuation currency: a conversion pair's closes over time,
    else the newest close a bot has of one."""

    closes: dict[str, PriceSeries]
    latest: dict[str, Rate]


async def conversion_rates(
    currencies: Iterable[str], valuation: str, prices: Mapping[int, BotPrices], data_dir: Path | None
) -> Rates:
    closes = await asyncio.to_thread(_series_for, sorted(set(currencies)), valuation, data_dir)
    return Rates(closes, latest_rates(prices.values(), valuation))


async def valuate(
    series: Mapping[int, Sequence[Point]],
    currencies: Mapping[int, str],
    valuation: str,
    prices: Mapping[int, BotPrices],
    data_dir: Path | None,
    first: Mapping[int, float] | None = None,
) -> tuple[Valuation, Rates]:
    """The portfolio in ``valuation`` at the conversion pairs' closes (candle files), else at the
    bots' own last closes of a conversion pair; and the rates used."""
    rates = await conversion_rates(currencies.values(), valuation, prices, data_dir)
    return value_portfolio(series, currencies, valuation, rates.closes, first, rates.latest), rates


async def realised_by_day(
    db: AsyncSession, valuation: str, rates: Rates, *, bot_id: int | None = None
) -> tuple[DailyProfit, int]:
    """Realised profit per UTC day in ``valuation`` (each trade at the rate known at its close) and
    how many trades had no rate."""
    query = select(Trade.close_time, Trade.profit_abs, Trade.pair).order_by(Trade.close_time)
    if bot_id is not None:
        query = query.where(Trade.bot_id == bot_id)
    rows = [(closed, float(profit), pair) for closed, profit, pair in (await db.execute(query)).all()]
    return daily_profit(rows, valuation, rates.closes, rates.latest)


def newest(prices: Mapping[int, BotPrices]) -> datetime | None:
    """The latest candle any bot has processed: "now" for ages in a replay as in live trading."""
    return max((p.time for p in prices.values()), default=None)
