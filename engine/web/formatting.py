"""How the web pages write numbers: money with its currency, prices to the market's tick, amounts,
percentages and ages. Pure functions of their arguments (no page, no database), so every page shows
the same figure the same way and the rules are tested once.

- Money: the currency's usual decimals (2 for dollar-like coins, 8 for BTC, ...), thousands separators,
  the unit after the number: ``1,234.56 USDT``, ``-0.00030372 BTC``. Never scientific notation.
- Prices: the decimals of the market's price tick when the engine knows it, else five significant
  digits (at least two decimals): ``30,012.50``, ``0.061234``, ``0.0000032338``.
- Percentages from ratios: ``+1.25 %``; signs where a gain or a loss is meant.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import SupportsFloat

__all__ = [
    "CURRENCY_DECIMALS",
    "age",
    "amount",
    "currency_decimals",
    "decimals_of_step",
    "money",
    "percent",
    "price",
    "quote_currency",
    "tone",
    "when",
]

Number = SupportsFloat | Decimal

# Decimals a trader expects per currency; others get DEFAULT_DECIMALS.
CURRENCY_DECIMALS: dict[str, int] = {
    **dict.fromkeys(("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "TRY"), 2),
    "BTC": 8,
    "ETH": 6,
    "BNB": 5,
}
DEFAULT_DECIMALS = 6
PRICE_DIGITS = 5  # significant digits of a price when the market's tick is unknown
DASH = "–"


def _finite(value: Number | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def _fixed(number: float, decimals: int, signed: bool) -> str:
    text = f"{number:{'+' if signed else ''},.{max(decimals, 0)}f}"
    # "-0.00" reads as a loss that is not there.
    if float(f"{number:.{max(decimals, 0)}f}") == 0:
        text = text.replace("-", "").replace("+", "")
    return text


def quote_currency(pair: str) -> str:
    """The currency a pair's prices and profits are in: ``ETH/BTC`` -> BTC, ``XRP/USDT:USDT`` -> USDT
    (a futures pair settles in the currency after the colon)."""
    if ":" in pair:
        return pair.rsplit(":", 1)[1]
    return pair.split("/", 1)[1] if "/" in pair else pair


def currency_decimals(currency: str | None) -> int:
    return CURRENCY_DECIMALS.get((currency or "").upper(), DEFAULT_DECIMALS)


def money(value: Number | None, currency: str | None, *, signed: bool = False) -> str:
    """``1,234.56 USDT``; ``+0.00030372 BTC`` with ``signed``; a dash for no value."""
    number = _finite(value)
    if number is None:
        return DASH
    text = _fixed(number, currency_decimals(currency), signed)
    return f"{text} {currency}" if currency else text


def decimals_of_step(step: Number | None) -> int | None:
    """Decimals a tick or lot step implies (0.01 -> 2, 1e-05 -> 5, 10 -> 0); None for no step."""
    number = _finite(step)
    if not number or number <= 0:
        return None
    text = format(Decimal(str(number)).normalize(), "f")
    return len(text.split(".")[1]) if "." in text else 0


def price(value: Number | None, tick: Number | None = None) -> str:
    """A price to the market's tick when known, else to PRICE_DIGITS significant digits."""
    number = _finite(value)
    if number is None:
        return DASH
    decimals = decimals_of_step(tick)
    if decimals is None:
        magnitude = math.floor(math.log10(abs(number))) if number else 0
        decimals = max(2, PRICE_DIGITS - 1 - magnitude)
    return _fixed(number, min(decimals, 12), False)


def amount(value: Number | None, step: Number | None = None) -> str:
    """A quantity of the base asset: to the lot step when known, else up to 8 decimals without
    trailing zeros (``0.52``, ``1,250``, ``0.00012345``)."""
    number = _finite(value)
    if number is None:
        return DASH
    decimals = decimals_of_step(step)
    if decimals is not None:
        return _fixed(number, decimals, False)
    text = _fixed(number, 8, False)
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(ratio: Number | None, *, signed: bool = True, decimals: int = 2) -> str:
    """A ratio as a percentage: 0.0125 -> ``+1.25 %``."""
    number = _finite(ratio)
    if number is None:
        return DASH
    return f"{_fixed(number * 100, decimals, signed)} %"


def tone(value: Number | None) -> str:
    """``gain``, ``loss`` or ``flat``: the colour a figure is shown in."""
    number = _finite(value)
    if not number:
        return "flat"
    return "gain" if number > 0 else "loss"


def when(value: datetime | None, *, seconds: bool = False) -> str:
    """``2024-01-08 12:05`` (UTC, as stored)."""
    if value is None:
        return DASH
    return f"{value:%Y-%m-%d %H:%M:%S}" if seconds else f"{value:%Y-%m-%d %H:%M}"


def age(since: datetime | None, now: datetime | None) -> str:
    """How long ago, coarsely: ``45 min``, ``3 h 10 min``, ``2 d 4 h``."""
    if since is None or now is None:
        return DASH
    span = now - since
    if span < timedelta(0):
        span = timedelta(0)
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
