"""What the ccxt-based sources (orderbook, trades, exchange) share: key-less public clients, one per
exchange, pointed at a base URL when the project sets one (a mirror, or the fake exchange in tests),
scopes split into exchange and pair, and ccxt's exceptions turned into the feeds' error tree."""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable
from typing import Any

from dsl.timeframes import parse_duration
from engine.data.errors import DataError
from engine.data.exchange import create_exchange, retry_after_seconds
from engine.feeds.http import (
    BadResponse,
    Banned,
    FeedError,
    RateLimited,
    ServerError,
    ServiceError,
    Unreachable,
)
from engine.feeds.sources.base import SourceSetup
from engine.observability import redact_text

__all__ = [
    "DEFAULT_EXCHANGE",
    "CcxtClients",
    "base_url_of",
    "call",
    "clients_for",
    "scopes_of",
    "split_scope",
]

DEFAULT_EXCHANGE = "binance"
BAN_PAUSE_S = 300.0  # a 418/403 without Retry-After: Binance bans for minutes at least
_STATUS = re.compile(r"\b(418|403|429)\b")


def split_scope(scope: str) -> tuple[str, str]:
    """``binance:ETH/BTC`` -> (``binance``, ``ETH/BTC``); a bare pair is on the default exchange."""
    exchange, sep, pair = scope.partition(":")
    if not sep:
        return DEFAULT_EXCHANGE, scope
    # Futures symbols carry their own colon (``XRP/USDT:USDT``): only the first one splits.
    return exchange or DEFAULT_EXCHANGE, pair


def scopes_of(requested: tuple[str, ...], pair: str | None, exchange: str | None) -> tuple[str, ...]:
    """The scopes a refresh covers: the ones asked for (the pairs bots trade), plus the feed's own
    ``pair:`` on its ``exchange:`` (followed even when no bot trades it)."""
    scopes = list(dict.fromkeys(requested))
    if pair:
        own = f"{exchange or DEFAULT_EXCHANGE}:{pair}"
        if own not in scopes:
            scopes.append(own)
    return tuple(scopes)


def base_url_of(setup: SourceSetup) -> str | None:
    """The host every ccxt ``urls['api']`` entry is moved to, when the project (or a test) sets one."""
    if setup.http is not None:
        return setup.http.base_url
    return setup.service.base_url


class CcxtClients:
    """One key-less ccxt client per exchange id, created on first use and closed together."""

    def __init__(
        self, service: str, base_url: str | None, timeout_s: float | None = None, *, futures: bool = False
    ):
        self.service = service
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.futures = futures  # load the linear futures markets too (positioning statistics)
        self._clients: dict[str, Any] = {}
        self._blocked: dict[str, float] = {}  # exchange id -> monotonic time calls may resume

    def get(self, exchange_id: str, pair: str = "") -> Any:
        """The client for ``exchange_id``; one that knows the linear futures markets too when the
        source asks for them or the pair is a futures one (``XRP/USDT:USDT``)."""
        futures = self.futures or ":" in pair
        key = f"{exchange_id}:futures" if futures else exchange_id
        client = self._clients.get(key)
        if client is None:
            config: dict[str, Any] = {}
            if self.timeout_s:
                config["timeout"] = int(self.timeout_s * 1000)
            try:
                client = create_exchange(exchange_id, futures=futures, config=config, api_url=self.base_url)
            except DataError as exc:
                raise ServiceError(self.service, str(exc).splitlines()[0]) from None
            self._clients[key] = client
        return client

    async def call[T](self, exchange: Any, pending: Awaitable[T]) -> T:
        """:func:`call`, and while the exchange asked us to wait (Retry-After, a ban) no call at all:
        ccxt's own limiter knows nothing of it, and asking again early prolongs a ban."""
        exchange_id = str(getattr(exchange, "id", ""))
        wait = self._blocked.get(exchange_id, 0.0) - time.monotonic()
        if wait > 0:
            if inspect.iscoroutine(pending):
                pending.close()
            raise RateLimited(self.service, f"{exchange_id} asked to wait {wait:.0f} s more", wait)
        try:
            return await call(self.service, exchange, pending)
        except (RateLimited, Banned) as exc:
            seconds = getattr(exc, "retry_after", None) or (BAN_PAUSE_S if isinstance(exc, Banned) else 0.0)
            if seconds:
                self._blocked[exchange_id] = time.monotonic() + seconds
            raise

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()


def clients_for(setup: SourceSetup, *, futures: bool = False) -> CcxtClients:
    """The clients of one ccxt-based source, with the service's base URL and timeout."""
    timeout = float(parse_duration(setup.service.timeout)) if setup.service.timeout else None
    return CcxtClients(setup.kind, base_url_of(setup), timeout, futures=futures)


async def call[T](service: str, exchange: Any, pending: Awaitable[T]) -> T:
    """Await one ccxt call, raising the feeds' errors: 429 -> RateLimited (with the exchange's
    Retry-After), 418/403 -> Banned, timeouts and refused connections -> Unreachable, an unknown pair
    or a refused request -> ServiceError, a body ccxt cannot read -> BadResponse."""
    import ccxt

    try:
        return await pending
    except FeedError:
        raise
    except ccxt.BadSymbol as exc:
        raise ServiceError(service, _text(exc)) from None
    except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
        # ccxt raises DDoSProtection for Binance's 418 (IP banned) and 429 alike: the status tells.
        status = _STATUS.search(str(exc))
        retry_after = retry_after_seconds(exchange)
        if status is not None and status.group(1) in ("418", "403"):
            raise Banned(service, f"HTTP {status.group(1)}: {_text(exc)}") from None
        raise RateLimited(service, _text(exc), retry_after) from None
    except ccxt.BadResponse as exc:
        raise BadResponse(service, _text(exc)) from None
    except (ccxt.RequestTimeout, ccxt.NetworkError) as exc:
        if isinstance(exc, ccxt.ExchangeNotAvailable) and re.search(r"\b5\d\d\b", str(exc)):
            raise ServerError(service, _text(exc)) from None
        raise Unreachable(service, _text(exc)) from None
    except ccxt.BaseError as exc:
        raise ServiceError(service, _text(exc)) from None
    except (ValueError, TypeError, KeyError) as exc:
        # ccxt's parsers choke on a field of the wrong type: schema drift.
        raise BadResponse(service, f"unreadable answer ({type(exc).__name__}: {_text(exc)})") from None


def _text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 240 else text[:240] + "..."
    return redact_text(f"{type(exc).__name__}: {text}")
