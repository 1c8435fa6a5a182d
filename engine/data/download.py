"""Downloading candles through ccxt's async client into the candle store.

For each pair: the requested span [since, until) is aligned to the timeframe and cut at the last *closed*
candle by the exchange's clock (the still-open candle is never stored); the ranges the store has already
fetched are subtracted (so a second run resumes where the first stopped and fetches only what is new);
each remaining range is paged through ``fetch_ohlcv(since=cursor, limit=1000, until=range end)``. Pages are
saved every ``save_every`` requests and whenever the pair stops, so an interrupted download loses at most
that many pages. Gaps the exchange returns (outages) are stored as known gaps and reported.

Requests go through ccxt's own rate limiter (``enableRateLimit``). Temporary failures (``NetworkError``:
timeouts, 5xx, dropped connections, ``RateLimitExceeded``/``DDoSProtection``) are retried with exponential
backoff plus jitter, waiting at least the server's ``Retry-After`` when it sends one; anything else (an
unknown symbol, a bad request) stops that pair with a DATA017 diagnostic and the download moves on.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dsl.errors import Diagnostic, did_you_mean
from dsl.timeframes import timeframe_seconds
from engine.data._frames import empty_frame
from engine.data.errors import DataError, issue
from engine.data.exchange import create_exchange, retry_after_seconds
from engine.data.naming import normalize_pair
from engine.data.ranges import subtract_ranges
from engine.data.store import CandleStore
from engine.data.validate import CANDLE_COLUMNS, timeframe_origin_ns, validate_candles

__all__ = [
    "DownloadEvent",
    "PairResult",
    "RetryPolicy",
    "download_candles",
]

_PAGE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for temporary failures: ``base_delay * 2**(attempt-1)``, capped, stretched by up to
    ``jitter`` (a fraction) at random, and never shorter than the server's Retry-After."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.25

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        wait = min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * (1 + self.jitter * rng.random())
        return max(wait, retry_after or 0.0)


@dataclass(frozen=True, slots=True)
class DownloadEvent:
    """Progress of a download: ``start`` (total = ms of history to fetch), ``advance`` (done = ms fetched so
    far, candles = stored so far), ``retry`` (message, delay) and ``done``."""

    kind: str
    pair: str
    total: int = 0
    done: int = 0
    candles: int = 0
    message: str = ""
    delay: float = 0.0


@dataclass
class PairResult:
    pair: str
    candles: int = 0  # new candles stored
    requests: int = 0
    retries: int = 0
    fetched: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    gaps: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)  # inside the asked span
    diagnostics: list[Diagnostic] = field(default_factory=list)
    up_to_date: bool = False  # nothing was missing

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


Sleep = Callable[[float], Awaitable[Any]]
Listener = Callable[[DownloadEvent], None]


class _Downloader:
    def __init__(
        self,
        exchange: Any,
        exchange_id: str,
        store: CandleStore,
        timeframe: str,
        retry: RetryPolicy,
        listener: Listener | None,
        sleep: Sleep,
        rng: random.Random,
        save_every: int,
    ):
        self.exchange = exchange
        self.exchange_id = exchange_id
        self.store = store
        self.timeframe = timeframe
        self.step = timeframe_seconds(timeframe) * 1000
        self.origin = timeframe_origin_ns(timeframe) // 1_000_000
        self.retry = retry
        self.listener = listener or (lambda event: None)
        self.sleep = sleep
        self.rng = rng
        self.save_every = max(1, save_every)

    async def call(
        self, result: PairResult | None, pair: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any
    ) -> Any:
        import ccxt.async_support as ccxt_async

        attempt = 1
        while True:
            try:
                value = await fn(*args, **kw)
                if result is not None:
                    result.requests += 1
                return value
            except ccxt_async.NetworkError as exc:
                if attempt >= self.retry.attempts:
                    raise
                retry_after = (
                    retry_after_seconds(self.exchange)
                    if isinstance(exc, ccxt_async.DDoSProtection | ccxt_async.RateLimitExceeded)
                    else None
                )
                delay = self.retry.delay(attempt, self.rng, retry_after)
                if result is not None:
                    result.requests += 1
                    result.retries += 1
                reason = f"{type(exc).__name__}: {str(exc)[:120]}"
                self.listener(DownloadEvent("retry", pair, message=reason, delay=delay))
                await self.sleep(delay)
                attempt += 1

    def align_up(self, ms: int) -> int:
        return -((self.origin - ms) // self.step) * self.step + self.origin

    def align_down(self, ms: int) -> int:
        return (ms - self.origin) // self.step * self.step + self.origin

    async def pair(self, pair: str, since_ms: int, until_ms: int | None, now_ms: int) -> PairResult:
        result = PairResult(pair)
        source = f"{self.exchange_id} {pair} {self.timeframe}"
        start = self.align_up(since_ms)
        # The candle opening at align_down(now) is still open: stop before it.
        end = self.align_down(now_ms)
        if until_ms is not None:
            end = min(end, self.align_down(until_ms))
        if end <= start:
            result.up_to_date = True
            self.listener(DownloadEvent("done", pair))
            return result

        entry = self.store.entry(self.exchange_id, pair, self.timeframe)
        have = [] if entry is None or entry.synthetic else [(_ms(a), _ms(b)) for a, b in entry.fetched]
        todo = subtract_ranges((start, end), have)
        total = sum(b - a for a, b in todo)
        self.listener(DownloadEvent("start", pair, total=total))
        result.up_to_date = not todo
        done = 0
        try:
            for lo, hi in todo:
                done = await self._range(result, pair, lo, hi, now_ms, done, total, source)
        except DataError as exc:
            result.diagnostics.extend(exc.diagnostics)
        except Exception as exc:  # ccxt's error tree: anything not retried ends this pair, not the run
            message = f"download stopped: {type(exc).__name__}: {str(exc).strip()[:300]}"
            result.diagnostics.append(issue("DATA017", message, source))
        final = self.store.entry(self.exchange_id, pair, self.timeframe)
        if final is not None:
            lo_ts, hi_ts = _ts(start), _ts(end)
            result.gaps = [(a, b) for a, b in final.gaps if a < hi_ts and b > lo_ts]
        self.listener(DownloadEvent("done", pair, total=total, done=done, candles=result.candles))
        return result

    async def _range(
        self, result: PairResult, pair: str, lo: int, hi: int, now_ms: int, done: int, total: int, source: str
    ) -> int:
        pages: list[list[list[float]]] = []
        saved_from = cursor = lo
        requests = 0
        try:
            while cursor < hi:
                rows = await self.call(
                    result,
                    pair,
                    self.exchange.fetch_ohlcv,
                    pair,
                    self.timeframe,
                    since=cursor,
                    limit=_PAGE_LIMIT,
                    params={"until": hi - 1},
                )
                requests += 1
                kept = [r for r in rows if cursor <= r[0] < hi and r[0] + self.step <= now_ms]
                if not kept:
                    cursor = hi  # nothing more in this range: the exchange has no candles there
                    break
                pages.append(kept)
                previous, cursor = cursor, int(kept[-1][0]) + self.step
                done += cursor - previous
                result.candles += len(kept)
                self.listener(DownloadEvent("advance", pair, total=total, done=done, candles=result.candles))
                if len(rows) < _PAGE_LIMIT:  # a short page with an end time means the range is exhausted
                    done += hi - cursor
                    cursor = hi
                if requests % self.save_every == 0:
                    self._save(pair, pages, saved_from, cursor, source, result)
                    pages, saved_from = [], cursor
        finally:
            # Whatever happened, keep what was fetched and remember up to where.
            self._save(pair, pages, saved_from, min(cursor, hi), source, result)
        return done

    def _save(
        self, pair: str, pages: list[list[list[float]]], lo: int, hi: int, source: str, result: PairResult
    ) -> None:
        if hi <= lo:
            return
        rows = [row for page in pages for row in page]
        if rows:
            array = np.asarray([row[:6] for row in rows], dtype=np.float64)
            raw = pd.DataFrame(array[:, 1:], columns=list(CANDLE_COLUMNS))
            raw.insert(0, "date", array[:, 0].astype(np.int64))
            frame, found = validate_candles(raw, source, timeframe=self.timeframe, first_line=1, binary=True)
            result.diagnostics.extend(d for d in found if d.code not in ("DATA010", "DATA009"))
        else:
            frame = empty_frame()
        if len(frame) == 0:
            # An empty stretch (before a listing, or an outage) is still fetched history, worth remembering
            # in a real series; it does not replace a synthetic sample with nothing.
            entry = self.store.entry(self.exchange_id, pair, self.timeframe)
            if entry is None or entry.synthetic:
                return
        self.store.save(
            self.exchange_id,
            pair,
            self.timeframe,
            frame,
            source=f"ccxt:{self.exchange_id}",
            fetched=[(_ts(lo), _ts(hi))],
        )
        result.fetched.append((_ts(lo), _ts(hi)))


def _ms(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).value) // 1_000_000


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


async def download_candles(
    exchange_id: str,
    pairs: Sequence[str],
    timeframe: str,
    since: Any,
    until: Any = None,
    *,
    store: CandleStore,
    exchange: Any = None,
    config: Mapping[str, Any] | None = None,
    api_url: str | None = None,
    retry: RetryPolicy | None = None,
    listener: Listener | None = None,
    sleep: Sleep = asyncio.sleep,
    seed: int | None = None,
    save_every: int = 50,
) -> list[PairResult]:
    """Download closed candles of ``pairs`` for [since, until) into ``store``; one result per pair.

    ``exchange`` may be a ready ccxt async exchange (it is then not closed here); otherwise one is created
    with :func:`create_exchange` and closed at the end. Problems with one pair do not stop the others;
    an unknown exchange or a failure to load its markets raises :class:`DataError`.
    """
    timeframe_seconds(timeframe)
    names = [normalize_pair(p) for p in pairs]
    since_ms = _ms(_utc(since))
    until_ms = _ms(_utc(until)) if until is not None else None
    own = exchange is None
    if own:
        exchange = create_exchange(
            exchange_id, futures=any(":" in p for p in names), config=config, api_url=api_url
        )
    worker = _Downloader(
        exchange,
        exchange_id,
        store,
        timeframe,
        retry or RetryPolicy(),
        listener,
        sleep,
        random.Random(seed),
        save_every,
    )
    try:
        try:
            markets = await worker.call(None, "*", exchange.load_markets)
            now_ms = await _server_time(worker, exchange)
        except Exception as exc:
            raise DataError(
                [
                    issue(
                        "DATA017",
                        f"cannot reach {exchange_id}: {type(exc).__name__}: {str(exc)[:300]}",
                        "<network>",
                    )
                ]
            ) from None
        if timeframe not in (getattr(exchange, "timeframes", None) or {timeframe: timeframe}):
            raise DataError([issue("DATA017", f"{exchange_id} does not serve {timeframe} candles", "<cli>")])
        results = []
        for pair in names:
            if pair not in markets:
                result = PairResult(pair)
                message = f"{exchange_id} has no market {pair}{did_you_mean(pair, list(markets))}"
                result.diagnostics.append(issue("DATA017", message, f"{exchange_id} {pair}"))
                results.append(result)
                continue
            results.append(await worker.pair(pair, since_ms, until_ms, now_ms))
        return results
    finally:
        if own:
            await exchange.close()


async def _server_time(worker: _Downloader, exchange: Any) -> int:
    """The exchange's clock (local clocks drift; what is closed is the exchange's call)."""
    if exchange.has.get("fetchTime"):
        value = await worker.call(None, "*", exchange.fetch_time)
        if value:
            return int(value)
    return int(exchange.milliseconds())


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
