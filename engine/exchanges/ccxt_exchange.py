"""A real exchange (testnet or live) through ``ccxt.async_support``.

Safety rules implemented here (see docs/exchanges.md). Import this module lazily:
importing ccxt takes a second.

* **Environment.** ``testnet`` switches ccxt to the exchange's sandbox (for Binance spot that is
  testnet.binance.vision). Before every order the URL the client is about to use is checked: in testnet
  mode its host must be one of the exchange's sandbox hosts (or a host given in ``api_urls``), in live
  mode it must not be a sandbox host; ccxt's own sandbox flag must agree. Otherwise
  :class:`WrongEnvironment` is raised and nothing is sent. :meth:`CcxtExchange.start` also checks the
  configuration and authenticates once (reading the balances), so a key that does not belong to the
  environment stops the engine before any order.
* **Errors.** ccxt's exceptions become the engine's tree (temporary vs operational). Rate-limit answers
  (``RateLimitExceeded`` and its sibling ``DDoSProtection``, i.e. 429/418) become :class:`RateLimited` with
  the Retry-After header when the exchange sent one, and push back every call of the account.
* **No double orders.** A placement that times out or loses its connection is not resent blindly: the
  order is looked up by its client order id a few times and adopted when found; only then is it placed
  again with the same client id (which the exchange refuses as a duplicate if it had it after all, and
  that refusal is answered by adopting the existing order).
* **Futures settings.** A futures account is given its margin mode and leverage for every traded pair
  at :meth:`CcxtExchange.start`, before any order (``set_margin_mode`` then ``set_leverage``; Binance's
  "no need to change margin type" is success, so a restart is harmless). Defaults are the engine's
  model: isolated, leverage 1. A refusal (leverage above the pair's bracket, margin type locked by an
  open position) raises with the pair and the setting named, and the bot does not start.
* **Secrets** are registered for log redaction and never put in exception messages.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import ccxt
import pandas as pd

from engine.exchanges.base import (
    AuthenticationFailed,
    Balance,
    ExchangeError,
    ExchangeOrder,
    ExchangeTrade,
    InsufficientFunds,
    InvalidOrder,
    MarketInfo,
    OperationalExchangeError,
    OrderNotFound,
    OrderRequest,
    RateLimited,
    TemporaryExchangeError,
    WrongEnvironment,
)
from engine.observability import category_logger, redact_text, register_secret
from engine.store.types import to_decimal

__all__ = ["AccountThrottle", "CcxtExchange", "translate_error"]

log = category_logger("api_calls", "exchange")
T = TypeVar("T")

_STATES = {"closed": "filled", "canceled": "cancelled", "cancelled": "cancelled", "rejected": "rejected"}


class AccountThrottle:
    """One per account: after a rate-limit answer every call of the account waits (Retry-After when the
    exchange gave one, else an exponential delay), with jitter so that several bots do not return at once."""

    def __init__(self, *, base: float = 0.5, cap: float = 60.0) -> None:
        self.base, self.cap = base, cap
        self._resume_at = 0.0
        self._strikes = 0

    async def wait(self) -> None:
        delay = self._resume_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def penalise(self, retry_after: float | None) -> float:
        self._strikes += 1
        delay = (
            retry_after if retry_after is not None else min(self.cap, self.base * 2 ** (self._strikes - 1))
        )
        delay += random.uniform(0, min(1.0, delay * 0.1))
        self._resume_at = max(self._resume_at, time.monotonic() + delay)
        return delay

    def reset(self) -> None:
        self._strikes = 0


_THROTTLES: dict[str, AccountThrottle] = {}
_AUTH_CODES = re.compile(r'"code"\s*:\s*(-2014|-2015)\b')


def _throttle_for(account: str) -> AccountThrottle:
    return _THROTTLES.setdefault(account, AccountThrottle())


def translate_error(exc: BaseException, headers: Mapping[str, str] | None = None) -> ExchangeError:
    """A ccxt exception as the engine's error (message redacted of registered secrets)."""
    message = redact_text(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ExchangeError):
        return exc
    if _AUTH_CODES.search(str(exc)):
        # ccxt raises DDoSProtection for Binance's -2015 (invalid key, IP or permissions); treating it as a
        # rate limit would retry a dead key forever.
        return AuthenticationFailed(message)
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return RateLimited(message, _retry_after(headers))
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended):
        return AuthenticationFailed(message)
    if isinstance(exc, ccxt.InsufficientFunds):
        return InsufficientFunds(message)
    if isinstance(exc, ccxt.OrderNotFound):
        return OrderNotFound(message)
    if isinstance(exc, ccxt.InvalidOrder | ccxt.BadRequest | ccxt.BadSymbol | ccxt.ArgumentsRequired):
        return InvalidOrder(message)
    if isinstance(exc, ccxt.NetworkError):  # RequestTimeout, ExchangeNotAvailable, OnMaintenance, ...
        return TemporaryExchangeError(message)
    return OperationalExchangeError(message)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


class CcxtExchange:
    """An exchange account through ccxt. ``api_urls`` replaces entries of ccxt's ``urls['api']`` (tests point
    it at a fake server); ``options`` are merged into the ccxt constructor config."""

    def __init__(
        self,
        exchange_id: str,
        mode: Literal["testnet", "live"] = "testnet",
        market: Literal["spot", "futures"] = "spot",
        *,
        api_key: str,
        secret: str,
        password: str | None = None,
        api_urls: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        retries: int = 4,
        lookup_checks: int = 3,
        lookup_delay: float = 0.5,
        symbols: Sequence[str] = (),
        leverage: float | None = None,
        margin_mode: Literal["isolated", "cross"] | None = None,
    ) -> None:
        if mode not in ("testnet", "live"):
            raise ValueError(f"CcxtExchange mode must be testnet or live, not {mode!r}")
        if market not in ("spot", "futures"):
            raise ValueError(f"market must be spot or futures, not {market!r}")
        for value in (api_key, secret, password):
            register_secret(value)
        self.name = exchange_id
        self.mode: Literal["testnet", "live"] = mode
        self.market_type = market
        self._credentials = {
            "apiKey": api_key,
            "secret": secret,
            **({"password": password} if password else {}),
        }
        self._api_urls = dict(api_urls or {})
        self._options = dict(options or {})
        self.retries = retries
        self.lookup_checks = lookup_checks
        self.lookup_delay = lookup_delay
        self.symbols = tuple(symbols)  # futures: the pairs whose margin mode and leverage start() sets
        self.leverage = leverage
        self.margin_mode = margin_mode
        self.throttle = _throttle_for(f"{exchange_id}:{mode}:{_fingerprint(api_key)}")
        self._client: Any = None
        self._markets: dict[str, MarketInfo] | None = None
        self._known_hosts: tuple[set[str], set[str]] | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        import ccxt.async_support as ccxt_async

        cls = getattr(ccxt_async, self.name, None)
        if cls is None:
            raise InvalidOrder(f"ccxt has no exchange {self.name!r}")
        config: dict[str, Any] = {"enableRateLimit": True, **self._options, **self._credentials}
        options = dict(config.get("options") or {})
        if self.market_type == "futures":
            options.setdefault("defaultType", "future")
            if self.mode == "testnet":
                # ccxt refuses Binance's futures testnet (testnet.binancefuture.com) unless told to: it
                # points users at Binance's demo trading instead. The futures testnet is still what a
                # testnet profile means here, and the environment check below still guards its hosts.
                options.setdefault("disableFuturesSandboxWarning", True)
        config["options"] = options
        client = cls(config)
        client.enableLastResponseHeaders = True
        if self.mode == "testnet":
            if not client.urls.get("test"):
                raise WrongEnvironment(f"{self.name} has no testnet (sandbox) in ccxt: use paper or live")
            client.set_sandbox_mode(True)
        if self._api_urls:
            client.urls["api"] = {**client.urls["api"], **self._api_urls}
        return client

    async def start(self) -> None:
        self.check_environment()
        await self.markets()
        await self.balances()  # authenticates: a key of the other environment fails here, before any order
        if self.market_type == "futures" and self.symbols:
            await self.configure_futures()

    async def configure_futures(self) -> None:
        """Margin mode, then leverage, of every pair in :attr:`symbols` (isolated and 1 unless set)."""
        margin = self.margin_mode or "isolated"
        leverage = 1.0 if self.leverage is None else float(self.leverage)
        if not leverage.is_integer():
            raise InvalidOrder(f"{self.name}: leverage must be a whole number, not {leverage:g}")
        self.check_environment()
        client = self.client
        for symbol in self.symbols:
            if client.has.get("setMarginMode"):
                try:
                    await self._call(
                        "set_margin_mode", lambda symbol=symbol: client.set_margin_mode(margin, symbol)
                    )
                except ExchangeError as error:
                    if "-4046" not in str(error):  # "No need to change margin type."
                        raise _named(error, f"cannot set {margin} margin on {symbol}") from None
            elif self.margin_mode is not None:
                raise InvalidOrder(f"{self.name}: ccxt cannot set the margin mode ({symbol})")
            if client.has.get("setLeverage"):
                try:
                    await self._call(
                        "set_leverage", lambda symbol=symbol: client.set_leverage(int(leverage), symbol)
                    )
                except ExchangeError as error:
                    raise _named(error, f"cannot set leverage {leverage:g} on {symbol}") from None
            elif self.leverage is not None:
                raise InvalidOrder(f"{self.name}: ccxt cannot set the leverage ({symbol})")
        log.info(
            "%s %s: %s margin, leverage %g on %s",
            self.name,
            self.mode,
            margin,
            leverage,
            ", ".join(self.symbols),
        )

    @property
    def price_scope(self) -> str:
        """What this client's public prices are the prices of: one exchange environment (accounts and
        bots on it share cached prices; see :mod:`engine.exchanges.fee_rates`)."""
        api = self.client.urls["api"]
        return f"{self.name}:{self.mode}:{_host(api.get('public') or next(iter(_urls_of(api)), ''))}"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    # ---- environment --------------------------------------------------------------------

    def _hosts(self) -> tuple[set[str], set[str]]:
        """(sandbox hosts, live hosts) as ccxt describes the exchange; computed once."""
        if self._known_hosts is None:
            import ccxt.async_support as ccxt_async

            urls = getattr(ccxt_async, self.name)().describe()["urls"]
            sandbox = {_host(u) for u in _urls_of(urls.get("test") or {})}
            live = {_host(u) for u in _urls_of(urls.get("api") or {})} - sandbox
            self._known_hosts = (sandbox, live)
        return self._known_hosts

    def check_environment(self) -> None:
        """Raise :class:`WrongEnvironment` unless the client will talk to this profile's environment."""
        client = self.client
        key = (
            "fapiPrivate"
            if self.market_type == "futures" and "fapiPrivate" in client.urls["api"]
            else "private"
        )
        url = client.urls["api"].get(key) or next(iter(_urls_of(client.urls["api"])), "")
        host = _host(url)
        sandbox_flag = bool(client.options.get("sandboxMode", client.isSandboxModeEnabled))
        overrides = {_host(u) for u in _urls_of(self._api_urls)}
        sandbox, live = self._hosts()
        if self.mode == "testnet":
            ok = sandbox_flag and (host in sandbox or host in overrides) and host not in live
        else:
            ok = not sandbox_flag and host not in sandbox
        if not ok:
            other = "live" if self.mode == "testnet" else "testnet"
            raise WrongEnvironment(
                f"{self.name} profile is {self.mode} but the client would send orders to {host or 'nowhere'} "
                f"({other} environment or unknown); refusing before sending anything"
            )

    # ---- calls --------------------------------------------------------------------------

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]], *, retry: bool = True) -> T:
        """One ccxt call through the account throttle; temporary errors retried (bounded) when ``retry``."""
        attempt = 0
        while True:
            await self.throttle.wait()
            try:
                result = await fn()
            except ccxt.BaseError as exc:
                error = translate_error(exc, getattr(self._client, "last_response_headers", None))
                if isinstance(error, RateLimited):
                    delay = self.throttle.penalise(error.retry_after)
                    log.warning("%s %s: rate limited, waiting %.2fs", self.name, what, delay)
                if not retry or not isinstance(error, TemporaryExchangeError) or attempt >= self.retries:
                    raise error from None
                attempt += 1
                if not isinstance(error, RateLimited):
                    await asyncio.sleep(_backoff(attempt))
                log.info("%s %s: %s, retry %d", self.name, what, type(error).__name__, attempt)
                continue
            self.throttle.reset()
            return result

    async def markets(self) -> dict[str, MarketInfo]:
        if self._markets is None:
            raw = await self._call("load_markets", lambda: self.client.load_markets())
            self._markets = {symbol: _market_info(m) for symbol, m in raw.items()}
        return dict(self._markets)

    async def balances(self) -> dict[str, Balance]:
        raw = await self._call("fetch_balance", lambda: self.client.fetch_balance())
        result: dict[str, Balance] = {}
        for asset, free in (raw.get("free") or {}).items():
            used = (raw.get("used") or {}).get(asset) or 0
            if free or used:
                result[asset] = Balance(asset, to_decimal(free or 0), to_decimal(used))
        return result

    async def last_price(self, symbol: str) -> Decimal | None:
        """The last traded price of ``symbol`` (its ticker); None when the exchange gives none. Used to
        value fees paid in a third asset (:mod:`engine.exchanges.fee_rates`)."""
        raw = await self._call("fetch_ticker", lambda: self.client.fetch_ticker(symbol), retry=False)
        for key in ("last", "close"):
            if raw.get(key):
                return to_decimal(raw[key])
        if raw.get("bid") and raw.get("ask"):
            return (to_decimal(raw["bid"]) + to_decimal(raw["ask"])) / 2
        return None

    def _order_params(self, request: OrderRequest) -> dict[str, Any]:
        key = "newClientOrderId" if self.name.startswith("binance") else "clientOrderId"
        params: dict[str, Any] = {key: request.client_order_id}
        if request.stop_price is not None:
            params["stopPrice"] = float(request.stop_price)
        if request.reduce_only:
            params["reduceOnly"] = True
        return params

    async def create_order(self, request: OrderRequest) -> ExchangeOrder:
        await self.markets()
        kind: str = request.type
        if request.type == "stop_market":
            # Binance spot calls a stop-market order STOP_LOSS; other exchanges take a market order with a
            # trigger price.
            kind = "STOP_LOSS" if self.name.startswith("binance") and self.market_type == "spot" else "market"
        price = float(request.price) if request.price is not None else None
        last: ExchangeError | None = None
        for attempt in range(self.retries + 1):
            self.check_environment()
            await self.throttle.wait()
            try:
                raw = await self.client.create_order(
                    request.symbol,
                    kind,
                    request.side,
                    float(request.amount),
                    price,
                    self._order_params(request),
                )
            except ccxt.BaseError as exc:
                error = translate_error(exc, getattr(self._client, "last_response_headers", None))
                if isinstance(error, InvalidOrder) and "duplicate order" in str(error).lower():
                    # It reached the exchange on an earlier attempt: adopt that order.
                    return await self.fetch_order(request.symbol, request.client_order_id)
                if not isinstance(error, TemporaryExchangeError):
                    raise error from None
                last = error
                if isinstance(error, RateLimited):
                    self.throttle.penalise(error.retry_after)  # refused before it was accepted
                    continue
                found = await self._look_up(request)
                if found is not None:
                    log.info("%s: order %s was placed despite %s", self.name, request.client_order_id, error)
                    return found
                await asyncio.sleep(_backoff(attempt + 1))
                continue
            self.throttle.reset()
            order = self._order(raw, request)
            if order.filled and not order.trades:
                order = await self._with_trades(order)
            return order
        assert last is not None
        raise last

    async def _look_up(self, request: OrderRequest) -> ExchangeOrder | None:
        """After a timeout: does the exchange have the order? ``lookup_checks`` tries, ``None`` when not."""
        for check in range(self.lookup_checks):
            if check:
                await asyncio.sleep(self.lookup_delay)
            try:
                return await self.fetch_order(request.symbol, request.client_order_id)
            except OrderNotFound:
                continue
            except TemporaryExchangeError:
                continue
        return None

    async def fetch_order(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        params = (
            {"origClientOrderId": client_order_id}
            if self.name.startswith("binance")
            else {"clientOrderId": client_order_id}
        )
        raw = await self._call("fetch_order", lambda: self.client.fetch_order(None, symbol, params))
        order = self._order(raw)
        if order.filled and not order.trades:
            order = await self._with_trades(order)
        return order

    async def cancel_order(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        self.check_environment()
        params = (
            {"origClientOrderId": client_order_id}
            if self.name.startswith("binance")
            else {"clientOrderId": client_order_id}
        )
        raw = await self._call("cancel_order", lambda: self.client.cancel_order(None, symbol, params))
        order = self._order(raw)
        return await self._with_trades(order) if order.filled else order

    async def open_orders(self, symbols: Sequence[str] | None = None) -> list[ExchangeOrder]:
        if symbols is None:
            self.client.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
            raws = await self._call("fetch_open_orders", lambda: self.client.fetch_open_orders())
        else:
            raws = []
            for symbol in symbols:
                raws += await self._call(
                    "fetch_open_orders", lambda symbol=symbol: self.client.fetch_open_orders(symbol)
                )
        return [self._order(raw) for raw in raws]

    async def _with_trades(self, order: ExchangeOrder) -> ExchangeOrder:
        raws = await self._call(
            "fetch_my_trades",
            lambda: self.client.fetch_my_trades(
                order.symbol, None, None, {"orderId": order.exchange_order_id}
            ),
        )
        trades = tuple(_trade(raw, order) for raw in raws if str(raw.get("order")) == order.exchange_order_id)
        return ExchangeOrder(**{**_fields(order), "trades": trades})

    async def fetch_candles(
        self, symbol: str, timeframe: str, since: pd.Timestamp | None, limit: int = 1000
    ) -> pd.DataFrame:
        since_ms = int(since.timestamp() * 1000) if since is not None else None
        rows = await self._call(
            "fetch_ohlcv", lambda: self.client.fetch_ohlcv(symbol, timeframe, since_ms, limit)
        )
        try:
            now_ms = await self._call("fetch_time", lambda: self.client.fetch_time())
        except ExchangeError:
            now_ms = None
        now_ms = now_ms or int(time.time() * 1000)
        step_ms = int(self.client.parse_timeframe(timeframe) * 1000)
        closed = [r for r in rows if r[0] + step_ms <= now_ms]
        frame = pd.DataFrame(closed, columns=["date", "open", "high", "low", "close", "volume"])
        frame["date"] = pd.to_datetime(frame["date"], unit="ms", utc=True)
        frame = frame.set_index("date").astype("float64")
        return frame[~frame.index.duplicated(keep="last")].sort_index()

    # ---- parsing ------------------------------------------------------------------------

    def _order(self, raw: Mapping[str, Any], request: OrderRequest | None = None) -> ExchangeOrder:
        filled = to_decimal(raw.get("filled") or 0)
        amount = to_decimal(raw.get("amount") or (request.amount if request else 0))
        status = raw.get("status") or "open"
        state = _STATES.get(status, "open")
        if state == "open" and filled > 0:
            state = "partially_filled"
        if status == "expired":
            state = "expired"
        stop = raw.get("stopPrice") or raw.get("triggerPrice")
        kind = (
            request.type
            if request
            else ("stop_market" if stop and raw.get("type") != "limit" else raw.get("type"))
        )
        if kind not in ("market", "limit", "stop_market"):
            kind = "stop_market" if stop else "limit"
        order = ExchangeOrder(
            exchange_order_id=str(raw.get("id")),
            client_order_id=raw.get("clientOrderId") or (request.client_order_id if request else None),
            symbol=raw.get("symbol") or (request.symbol if request else ""),
            side=raw.get("side") or (request.side if request else "buy"),
            type=kind,
            amount=amount,
            filled=filled,
            average_price=to_decimal(raw["average"]) if raw.get("average") else None,
            state=state,  # type: ignore[arg-type]
            price=to_decimal(raw["price"]) if raw.get("price") else None,
            stop_price=to_decimal(stop) if stop else None,
        )
        trades = tuple(_trade(t, order) for t in raw.get("trades") or () if t.get("id") is not None)
        return ExchangeOrder(**{**_fields(order), "trades": trades}) if trades else order


def _named(error: ExchangeError, what: str) -> ExchangeError:
    """``error`` (same class, so temporary stays temporary) with what was being done in its message."""
    return type(error)(f"{what}: {error}")


def _fields(order: ExchangeOrder) -> dict[str, Any]:
    return {name: getattr(order, name) for name in ExchangeOrder.__slots__}  # type: ignore[attr-defined]


def _trade(raw: Mapping[str, Any], order: ExchangeOrder) -> ExchangeTrade:
    fee = raw.get("fee") or {}
    stamp = raw.get("timestamp")
    return ExchangeTrade(
        trade_id=str(raw["id"]),
        client_order_id=order.client_order_id,
        exchange_order_id=order.exchange_order_id,
        symbol=order.symbol,
        side=order.side,
        amount=to_decimal(raw.get("amount") or 0),
        price=to_decimal(raw.get("price") or 0),
        fee=to_decimal(fee.get("cost") or 0),
        fee_asset=fee.get("currency") or "",
        time=pd.Timestamp(stamp, unit="ms", tz="UTC") if stamp else pd.Timestamp.now(tz="UTC"),
    )


def _market_info(raw: Mapping[str, Any]) -> MarketInfo:
    limits = raw.get("limits") or {}
    precision = raw.get("precision") or {}

    def number(value: Any) -> Decimal:
        return to_decimal(value) if value else Decimal(0)

    return MarketInfo(
        symbol=raw["symbol"],
        base=raw.get("base") or "",
        quote=raw.get("quote") or "",
        min_notional=number((limits.get("cost") or {}).get("min")),
        amount_step=number(precision.get("amount")),
        price_tick=number(precision.get("price")),
    )


def _backoff(attempt: int, base: float = 0.25, cap: float = 8.0) -> float:
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay + random.uniform(0, delay / 2)


def _urls_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [u for v in value.values() for u in _urls_of(v)]
    return []


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _fingerprint(api_key: str) -> str:
    import hashlib

    return hashlib.sha256(api_key.encode()).hexdigest()[:12]
