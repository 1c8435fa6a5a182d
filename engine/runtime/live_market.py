"""Where the live feed's candles come from: the market source of a series (:class:`MarketSource`), the
key-less ccxt client for it, the local clock the feed runs on (:class:`Timer`), the error of market
data that cannot be had, and how the feed describes exchange errors in its log lines.

Part of the live feed split (see :mod:`engine.runtime.live_feed`, which re-exports the public names).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from engine.observability import redact_text

log = logging.getLogger("engine.runtime.feed")

_NS = 1_000_000


class MarketDataError(ValueError):
    """Market data cannot be had: the exchange is unreachable at start, a pair is unknown to it, or a
    warm-up fetch failed. A ValueError so that a bot that cannot get its history is reported as a bot
    that cannot start, like a bot without candle files in a replay."""


class Timer(Protocol):
    """The local clock (ms) and a way to wait on it; tests drive a fake one."""

    def now_ms(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class WallTimer:
    def now_ms(self) -> float:
        return time.time() * 1000.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class MarketSource:
    """Where a series' candles come from: a ccxt exchange id, its sandbox or not, spot or futures."""

    name: str
    testnet: bool = False
    futures: bool = False

    @property
    def id(self) -> str:
        return self.name + (":testnet" if self.testnet else "") + (":futures" if self.futures else "")

    @classmethod
    def of_bot(cls, bot_model: Any) -> MarketSource:
        """From a bot's ``exchange:`` block (an ``engine.config`` Bot model)."""
        exchange = bot_model.exchange
        return cls(exchange.name, exchange.mode == "testnet", exchange.market == "futures")


def make_market_client(source: MarketSource) -> Any:
    """A key-less ccxt async client for public market data of ``source``: the ``ccxt.pro`` class when
    ccxt has one (REST and websocket in one client), else the ``ccxt.async_support`` one."""
    import ccxt.async_support as ccxt_async
    import ccxt.pro as ccxt_pro

    cls = getattr(ccxt_pro, source.name, None) or getattr(ccxt_async, source.name, None)
    if cls is None:
        raise MarketDataError(f"ccxt has no exchange {source.name!r}")
    options = {"defaultType": "future"} if source.futures else {}
    client = cls({"enableRateLimit": True, "options": options})
    if source.testnet:
        if not client.urls.get("test"):
            raise MarketDataError(f"{source.name} has no testnet (sandbox) in ccxt")
        client.set_sandbox_mode(True)
    return client


def _retry_after(error: BaseException, headers: Mapping[str, str] | None = None) -> float | None:
    """Seconds a rate-limited client was asked to wait, when the exchange said so."""
    from engine.exchanges.ccxt_exchange import translate_error

    translated = translate_error(error, headers)
    return getattr(translated, "retry_after", None)


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return redact_text(f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__)


def _utc(ms: int) -> str:
    return pd.Timestamp(ms * _NS, tz="UTC").strftime("%Y-%m-%d %H:%M")


def _log(level: int, message: str, *args: Any, pair: str | None = None, mode: str = "paper") -> None:
    # The mode is passed explicitly: the feed's generator runs in the runtime's tasks, whose context
    # variables it must not set across a yield.
    log.log(level, message, *args, extra={"mode": mode, "pair": pair})
