"""One portfolio value from bots in different quote currencies (pure; the prices are loaded by
:mod:`engine.web.prices`).

Each bot's equity is in its own quote currency (BTC for ETH/BTC, USDT for XRP/USDT:USDT). Adding them
up as numbers is meaningless, so the dashboard keeps a total per currency (exact, no conversion) and
values the portfolio in one currency the user chooses at prices the engine already has: a conversion
pair's closes (``BTC/USDT``, or ``USDT/BTC`` inverted). A rate is as of the close it comes from;
older than :data:`STALE_AFTER` before the moment valued, it is flagged stale, and a currency without
any rate is left out of the converted total with a note instead of being added as if it were worth 1.

- Figures per currency: equity now, P&L today / this week / all time (as in :mod:`engine.web.queries`).
- Converted: each currency's figures times its rate now; the equity curve values each point at the
  rate of its own time (so a BTC bot's curve in USDT moves with BTC too).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.web.queries import PnL, Point, portfolio_pnl, total_equity

__all__ = [
    "STALE_AFTER",
    "CurrencyFigures",
    "PriceSeries",
    "Rate",
    "Valuation",
    "convert_curve",
    "rate_at",
    "value_portfolio",
]

STALE_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class PriceSeries:
    """Closes of a conversion pair, oldest first: ``times[i]`` is when ``closes[i]`` became known (the
    candle's close time). ``inverted``: the pair is quoted the other way round (USDT/BTC for BTC in
    USDT), so a rate is 1 / close."""

    pair: str
    times: Sequence[datetime]
    closes: Sequence[float]
    source: str
    inverted: bool = False


@dataclass(frozen=True)
class Rate:
    """1 unit of a currency in the valuation currency, as of ``as_of``."""

    value: float
    as_of: datetime | None
    source: str
    stale: bool = False


def rate_at(series: PriceSeries, moment: datetime) -> Rate | None:
    """The last close known at ``moment`` (never a later one); None before the first close."""
    i = bisect.bisect_right(series.times, moment) - 1
    if i < 0:
        return None
    close = float(series.closes[i])
    if close <= 0:
        return None
    value = 1.0 / close if series.inverted else close
    as_of = series.times[i]
    return Rate(value, as_of, series.source, stale=moment - as_of > STALE_AFTER)


def convert_curve(
    points: Sequence[Point], series: PriceSeries | None, fallback: Rate | None = None
) -> list[Point]:
    """Each point valued at the rate of its own time; points before the first close (or all of them
    without a series) use ``fallback``; points with neither are dropped."""
    out: list[Point] = []
    for time, equity in points:
        rate = rate_at(series, time) if series is not None else None
        rate = rate or fallback
        if rate is not None:
            out.append((time, equity * rate.value))
    return out


@dataclass(frozen=True)
class CurrencyFigures:
    """A currency's bots together, in that currency."""

    currency: str
    bots: tuple[int, ...]
    equity: float | None
    pnl: PnL
    rate: Rate | None = None  # None: not convertible to the valuation currency


@dataclass(frozen=True)
class Valuation:
    currency: str
    equity: float | None
    pnl: PnL
    curve: list[Point]
    per_currency: tuple[CurrencyFigures, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def stale(self) -> bool:
        return any(c.rate is not None and c.rate.stale for c in self.per_currency)


def _scaled(value: float | None, rate: float) -> float | None:
    return None if value is None else value * rate


def value_portfolio(
    series: Mapping[int, Sequence[Point]],
    currencies: Mapping[int, str],
    valuation: str,
    prices: Mapping[str, PriceSeries],
    first: Mapping[int, float] | None = None,
    latest: Mapping[str, Rate] | None = None,
) -> Valuation:
    """The portfolio in ``valuation``: ``series`` are the bots' equity points in their own currency
    (``currencies``: bot -> quote currency); ``prices``: currency -> its conversion pair's closes;
    ``latest``: a currency's newest known rate when no close series exists (the engine's last
    close of a pair it trades). Bots of an unknown currency are left out with a note."""
    groups: dict[str, dict[int, Sequence[Point]]] = {}
    notes: list[str] = []
    unknown = [owner for owner in series if owner not in currencies]
    if unknown:
        notes.append(f"{len(unknown)} bot(s) of unknown currency left out")
    for owner, points in series.items():
        if owner in currencies:
            groups.setdefault(currencies[owner], {})[owner] = points
    now = max((points[-1][0] for points in series.values() if points), default=None)
    figures: list[CurrencyFigures] = []
    curves: dict[int, list[Point]] = {}
    totals = {"equity": 0.0, "today": 0.0, "week": 0.0, "all": 0.0}
    any_valued = False
    for currency in sorted(groups):
        members = groups[currency]
        pnl = portfolio_pnl(members, first, now)
        curve = total_equity(members)
        equity = curve[-1][1] if curve else None
        rate: Rate | None
        price_series = prices.get(currency)
        if currency == valuation:
            rate = Rate(1.0, now, "same currency")
        elif price_series is not None and now is not None:
            rate = rate_at(price_series, now)
        else:
            rate = (latest or {}).get(currency)
            if rate is not None and now is not None and rate.as_of is not None:
                rate = Rate(rate.value, rate.as_of, rate.source, stale=now - rate.as_of > STALE_AFTER)
        figures.append(CurrencyFigures(currency, tuple(sorted(members)), equity, pnl, rate))
        if rate is None:
            notes.append(f"no {currency}/{valuation} price known: {currency} bots are not in the total")
            continue
        if rate.stale:
            notes.append(f"{currency}/{valuation} price is stale (as of {rate.as_of:%Y-%m-%d %H:%M} UTC)")
        any_valued = True
        same = currency == valuation
        for owner, points in members.items():
            curves[owner] = list(points) if same else convert_curve(points, price_series, rate)
        totals["equity"] += (equity or 0.0) * rate.value
        totals["today"] += (pnl.today or 0.0) * rate.value
        totals["week"] += (pnl.week or 0.0) * rate.value
        totals["all"] += (pnl.all_time or 0.0) * rate.value
    if not any_valued:
        return Valuation(valuation, None, PnL(None, None, None, now), [], tuple(figures), tuple(notes))
    pnl = PnL(totals["today"], totals["week"], totals["all"], now)
    return Valuation(valuation, totals["equity"], pnl, total_equity(curves), tuple(figures), tuple(notes))
