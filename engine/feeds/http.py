"""The HTTP side every feed source shares: a per-service rate limit, retries with backoff that honour
``Retry-After``, and one error tree for the ways public data services fail.

Services report errors in their own shapes (HTTP 429 with or without ``Retry-After``, 418/403 bans,
5xx, errors inside an HTTP 200 body); each source turns its shapes into these exceptions, and the
scheduler treats them alike: mark the source degraded, try the next source of the chain, back off.
Keys never appear in messages: the client masks every secret it was given.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping
from typing import Any

import httpx

from engine.observability import category_logger, log_event, register_secret

__all__ = [
    "BadResponse",
    "Banned",
    "FeedError",
    "FeedHttpClient",
    "RateLimited",
    "RateLimiter",
    "ServerError",
    "ServiceError",
    "Unreachable",
]

api_log = category_logger("api_calls")


class FeedError(Exception):
    """A source could not deliver. ``retry`` says whether trying again later may help."""

    retry = True
    # The HTTP status and the (masked) start of the body, when the error is an HTTP answer; sources
    # read them to name a service's own error shape (Yahoo's 404 for an unknown symbol).
    status: int | None = None
    body: str = ""

    def __init__(self, service: str, message: str):
        super().__init__(f"{service}: {message}")
        self.service = service


class RateLimited(FeedError):
    def __init__(self, service: str, message: str, retry_after: float | None = None):
        super().__init__(service, message)
        self.retry_after = retry_after


class Banned(FeedError):
    """418/403: the service refuses us for a while; retrying at once makes it worse."""

    retry = False


class ServerError(FeedError):
    pass


class Unreachable(FeedError):
    """Connection refused, DNS, timeout."""


class BadResponse(FeedError):
    """Not JSON, truncated, or not the shape the service documents (schema drift)."""

    retry = False


class ServiceError(FeedError):
    """An error the service reports inside a successful HTTP answer (CryptoCompare Type 99, Etherscan
    status "0")."""

    retry = False


class RateLimiter:
    """At most ``per_minute`` calls in any rolling 60 s, shared by every feed using one service."""

    def __init__(self, per_minute: float, clock: Any = time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._calls: list[float] = []
        self._lock = asyncio.Lock()
        self.blocked_until = 0.0

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._calls = [t for t in self._calls if now - t < 60.0]
                wait = max(0.0, self.blocked_until - now)
                if len(self._calls) >= self.per_minute:
                    wait = max(wait, 60.0 - (now - self._calls[0]) + 0.001)
                if wait <= 0:
                    self._calls.append(now)
                    return
                await asyncio.sleep(wait)

    def block_for(self, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, self._clock() + seconds)

    @property
    def used(self) -> int:
        now = self._clock()
        return sum(1 for t in self._calls if now - t < 60.0)


class FeedHttpClient:
    """GET JSON (or text) from one service with its limiter, retries and secret masking."""

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        per_minute: float,
        timeout: float = 20.0,
        retries: int = 3,
        backoff: float = 1.0,
        secrets: tuple[str, ...] = (),
        limiter: RateLimiter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_bytes: int = 20 * 1024 * 1024,
    ):
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter or RateLimiter(per_minute)
        self.retries = retries
        self.backoff = backoff
        self.max_bytes = max_bytes
        self.secrets = tuple(s for s in secrets if s)
        for secret in self.secrets:
            register_secret(secret)
        self.calls = 0
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=True)

    async def aclose(self) -> None:
        await self._client.aclose()

    def add_secret(self, secret: str | None) -> None:
        """Mask one more secret (a per-feed key) in this client's messages and in every log."""
        if secret and secret not in self.secrets:
            self.secrets = (*self.secrets, secret)
            register_secret(secret)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    async def get_json(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        text = await self.get_text(path, params, headers)
        try:
            return json.loads(text)
        except ValueError:
            raise BadResponse(
                self.service, f"{self.mask(path)}: the answer is not JSON ({self.mask(_excerpt(text))})"
            ) from None

    async def get_text(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> str:
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"
        attempt = 0
        while True:
            try:
                return await self._once(url, params, headers)
            except FeedError as exc:
                attempt += 1
                if not exc.retry or attempt > self.retries:
                    raise
                delay = self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 4)
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                    self.limiter.block_for(exc.retry_after)
                log_event(
                    api_log, "feed call retried", service=self.service, error=str(exc), wait_s=round(delay, 2)
                )
                await asyncio.sleep(delay)

    async def _once(
        self, url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None
    ) -> str:
        await self.limiter.acquire()
        self.calls += 1
        started = time.perf_counter()
        shown = self.mask(url)
        try:
            # httpx replaces a URL's own query with ``params`` (even an empty one): merge them instead.
            target = httpx.URL(url)
            if params:
                target = target.copy_merge_params(dict(params))
            response = await self._client.get(target, headers=dict(headers or {}))
        except httpx.TimeoutException:
            raise Unreachable(self.service, f"{shown}: timed out") from None
        except httpx.HTTPError as exc:
            raise Unreachable(
                self.service, f"{shown}: {self.mask(type(exc).__name__ + ': ' + str(exc))}"
            ) from None
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        log_event(
            api_log, "feed call", service=self.service, url=shown, status=response.status_code, ms=elapsed
        )
        status = response.status_code
        body = response.content[: self.max_bytes + 1]
        if len(body) > self.max_bytes:
            raise BadResponse(self.service, f"{shown}: answer larger than {self.max_bytes} bytes")
        # A service may echo the request (and its key) back: mask before anything quotes the body.
        text = self.mask(body.decode(response.encoding or "utf-8", errors="replace"))
        if status == 429:
            raise RateLimited(
                self.service,
                f"HTTP 429 rate limited ({self.mask(_excerpt(text))})",
                _retry_after(response.headers),
            )
        if status in (418, 403):
            seconds = _retry_after(response.headers) or 300.0
            self.limiter.block_for(seconds)
            raise Banned(
                self.service, f"HTTP {status}: refused for {seconds:.0f} s ({self.mask(_excerpt(text))})"
            )
        if status >= 500:
            raise ServerError(self.service, f"HTTP {status} ({self.mask(_excerpt(text))})")
        if status >= 400:
            error = BadResponse(self.service, f"HTTP {status} for {shown} ({self.mask(_excerpt(text))})")
            error.status, error.body = status, self.mask(_excerpt(text, 2000))
            raise error
        return text


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _excerpt(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
