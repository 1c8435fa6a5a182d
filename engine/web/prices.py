"""The prices the web pages show, from what the engine already has (the web app never asks an exchange):

- a bot's last closes: the ``checkpoints`` row the runtime replaces at every candle holds each of its
  pairs' last close (the price its positions are marked to), its price ticks and lot steps, and the
  candle's time. That is the "current price" of an open position, as of the bot's last candle.
- conversion pairs' closes (BTC/USDT to value BTC in USDT): the candle files the bots run on (the
  replay directory of ``engine serve --replay`` / ``engine demo``) or the engine's candle store
  (``engine data download``). Read in a worker thread, cached while the file is unchanged.

Where candles are looked for is also where the bot chart and the editor's backtest look
(:func:`candle_sources`), so the pages find the data the bots are running on.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import Checkpoint
from engine.web.formatting import quote_currency
from engine.web.valuation import PriceSeries, Rate

__all__ = [
    "BotPrices",
    "CandleSource",
    "bot_prices",
    "candle_sources",
    "conversion_series",
    "latest_rates",
]


@dataclass(frozen=True)
class BotPrices:
    """What a bot's checkpoint says about its market, as of its last committed candle."""

    bot_id: int
    pairs: tuple[str, ...]
    time: datetime
    timeframe: str
    closes: dict[str, float] = field(default_factory=dict)
    ticks: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    trailing: dict[str, float] = field(default_factory=dict)  # active trailing/lock stop per pair

    @property
    def currency(self) -> str | None:
        return quote_currency(self.pairs[0]) if self.pairs else None


def _positive(value: float) -> float | None:
    return float(value) if value and not math.isnan(value) and value > 0 else None


def _decode(row: Checkpoint) -> BotPrices:
    from engine.runtime.checkpoint import load_state
    from engine.trading import layout as L

    when = datetime.fromtimestamp(row.time / 1e9, tz=UTC)
    pairs = tuple(row.pairs)
    prices = BotPrices(row.bot_id, pairs, when, row.timeframe)
    try:
        state = load_state(row.state)
    except Exception:  # an unreadable checkpoint costs the prices, not the page
        return prices
    for i, pair in enumerate(state.pairs):
        if (close := _positive(state.pos_f[i, L.P_MARK])) is not None:
            prices.closes[pair] = close
        if (tick := _positive(state.lim[i, L.L_PRICE_TICK])) is not None:
            prices.ticks[pair] = tick
        if (step := _positive(state.lim[i, L.L_AMOUNT_STEP])) is not None:
            prices.steps[pair] = step
        levels = [v for v in (state.pos_f[i, L.P_TRAIL], state.pos_f[i, L.P_LOCK]) if not math.isnan(v)]
        if levels and state.pos_i[i, L.Q_SIDE] != 0:
            # The tighter of the two follows the price: above the entry for a long, below for a short.
            prices.trailing[pair] = max(levels) if state.pos_i[i, L.Q_SIDE] > 0 else min(levels)
    return prices


# (bot id, checkpoint time) -> decoded: the state is decoded once per candle, not once per refresh.
_DECODED: dict[tuple[int, int], BotPrices] = {}


async def bot_prices(db: AsyncSession, bot_ids: Iterable[int] | None = None) -> dict[int, BotPrices]:
    """Per bot with a checkpoint: its pairs, last closes, ticks and steps as of its last candle."""
    heads = select(Checkpoint.bot_id, Checkpoint.time)
    if bot_ids is not None:
        heads = heads.where(Checkpoint.bot_id.in_(list(bot_ids)))
    wanted = [(owner, time) for owner, time in (await db.execute(heads)).all()]
    missing = [owner for owner, time in wanted if (owner, time) not in _DECODED]
    if missing:
        for row in (await db.scalars(select(Checkpoint).where(Checkpoint.bot_id.in_(missing)))).all():
            for key in [k for k in _DECODED if k[0] == row.bot_id]:
                del _DECODED[key]
            _DECODED[(row.bot_id, row.time)] = _decode(row)
    return {owner: _DECODED[(owner, time)] for owner, time in wanted if (owner, time) in _DECODED}


def latest_rates(prices: Iterable[BotPrices], valuation: str) -> dict[str, Rate]:
    """Currency -> its newest rate in ``valuation`` from the bots' own last closes (a bot trading
    BTC/USDT or USDT/BTC gives BTC's)."""
    rates: dict[str, Rate] = {}
    for bot in prices:
        for pair, close in bot.closes.items():
            base, quote = pair.split(":")[0].split("/")
            if quote == valuation:
                currency, value = base, close
            elif base == valuation:
                currency, value = quote, 1.0 / close
            else:
                continue
            known = rates.get(currency)
            if known is None or (known.as_of is not None and bot.time > known.as_of):
                rates[currency] = Rate(value, bot.time, f"last {pair} close of a bot")
    return rates


# ---- candle files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandleSource:
    """A place candles are read from, and how to say so to a user."""

    label: str
    source: Any  # engine.data CandleSource


def candle_sources(data_dir: Path | None, exchange: str = "binance") -> list[CandleSource]:
    """Where the bots' candles are: the replay directory first (the demo's and ``--replay``'s), then
    the engine's candle store."""
    from engine.data import DataError, open_source

    out: list[CandleSource] = []
    if data_dir is not None:
        with contextlib.suppress(DataError):  # the directory is gone: the store alone
            out.append(CandleSource("the replay data", open_source(data_dir=data_dir)))
    out.append(CandleSource("the candle store", open_source(exchange=exchange)))
    return out


_SERIES: dict[tuple[str, str, str], tuple[float, PriceSeries | None]] = {}


def _file_stamp(source: Any, pair: str, timeframe: str) -> float:
    files = getattr(source, "files", None)
    if isinstance(files, dict):
        entry = files.get((pair, timeframe))
        path = entry.path if entry is not None else None
    else:
        path = source.store.path(source.exchange, pair, timeframe)
    try:
        return path.stat().st_mtime if path is not None else 0.0
    except OSError:
        return 0.0


def _closes(pair: str, sources: Sequence[CandleSource]) -> PriceSeries | None:
    import pandas as pd

    from dsl.timeframes import timeframe_seconds
    from engine.data import DataError

    for place in sources:
        try:
            timeframes = place.source.timeframes(pair)
        except (DataError, OSError, ValueError):
            continue
        if not timeframes:
            continue
        timeframe = min(timeframes, key=timeframe_seconds)
        key = (place.label, pair, timeframe)
        stamp = _file_stamp(place.source, pair, timeframe)
        cached = _SERIES.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            frame = place.source.load(pair, timeframe)
        except (DataError, OSError, ValueError):
            continue
        if frame.empty:
            continue
        closed = frame.index + pd.Timedelta(seconds=timeframe_seconds(timeframe))
        times = [t.to_pydatetime() for t in closed]  # aware (UTC), as the store's times
        series = PriceSeries(
            pair, times, frame["close"].astype(float).tolist(), f"{pair} candles in {place.label}"
        )
        _SERIES[key] = (stamp, series)
        return series
    return None


def conversion_series(currency: str, valuation: str, sources: Sequence[CandleSource]) -> PriceSeries | None:
    """``currency``'s price in ``valuation`` over time from a conversion pair's candles (direct, or the
    inverse pair); None when neither is stored. Blocking: call in a worker thread."""
    direct = _closes(f"{currency}/{valuation}", sources)
    if direct is not None:
        return direct
    inverse = _closes(f"{valuation}/{currency}", sources)
    if inverse is not None:
        return PriceSeries(inverse.pair, inverse.times, inverse.closes, inverse.source, inverted=True)
    return None
