"""The notifier: resolves channel secrets, then delivers events in the background, one worker per channel.

``notify(event)`` only renders and enqueues, so trading never waits for a chat server. Each worker
sends its queue in order, rate-limited by a token bucket; events over the limit are counted and
reported in one "suppressed" message. A failed send is retried with backoff and then logged, never
raised. A channel that is down delays only its own queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.notify._base import Channel, DeliveryError
from engine.notify._daily import SummaryProvider, run_daily_summaries
from engine.notify._ratelimit import TokenBucket
from engine.notify._render import Rendered, render, suppressed_message, suppressed_note
from engine.notify.config import NotificationsConfig, RateLimit, RetryPolicy, is_env_ref
from engine.notify.events import ErrorEvent, Event
from engine.observability import (
    SECRETS,
    ContextFilter,
    RedactingFilter,
    SecretRegistry,
    current_context,
    is_sensitive_key,
    log_event,
    redact_text,
)

__all__ = [
    "ChannelStats",
    "NotificationLogHandler",
    "Notifier",
    "NotifyConfigError",
    "SecretResolver",
    "environ_resolver",
]

log = logging.getLogger("engine.notify")

SecretResolver = Callable[[str], str]


class NotifyConfigError(ValueError):
    """A channel cannot be built: a secret does not resolve, or resolves to something unusable."""


def environ_resolver(ref: str) -> str:
    """Resolve ``env:NAME`` from the process environment."""
    name = ref.removeprefix("env:")
    value = os.environ.get(name)
    if not value:
        raise LookupError(f"environment variable {name} is not set")
    return value


@dataclass
class ChannelStats:
    sent: int = 0
    failed: int = 0
    retries: int = 0
    suppressed: int = 0


_STOP = object()


@dataclass
class _Worker:
    name: str
    events: frozenset[str]
    rate_limit: RateLimit
    retry: RetryPolicy
    factory: Callable[[Any], Channel]
    queue_size: int
    clock: Callable[[], float]
    registry: SecretRegistry
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    suppressed: Counter[str] = field(default_factory=Counter)
    stats: ChannelStats = field(default_factory=ChannelStats)
    suppressed_mode: str | None = None
    channel: Channel | None = None
    task: asyncio.Task[None] | None = None
    bucket: TokenBucket = field(init=False)

    def __post_init__(self) -> None:
        self.bucket = TokenBucket(self.rate_limit.messages, self.rate_limit.per_seconds, clock=self.clock)

    def offer(self, message: Rendered) -> None:
        if self.queue.qsize() >= self.queue_size:
            self._suppress(message)
        else:
            self.queue.put_nowait(message)

    def _suppress(self, message: Rendered) -> None:
        self.suppressed[message.kind] += 1
        self.suppressed_mode = message.mode
        self.stats.suppressed += 1

    async def run(self) -> None:
        while True:
            if self.suppressed:
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout=self.bucket.wait_time() + 0.001)
                except TimeoutError:
                    # Quiet again: report what the limit swallowed in one message.
                    if self.bucket.try_take():
                        counts, self.suppressed = dict(self.suppressed), Counter()
                        await self._deliver(suppressed_message(counts, mode=self.suppressed_mode))
                    continue
            else:
                item = await self.queue.get()
            try:
                if item is _STOP:
                    return
                if self.bucket.try_take():
                    message: Rendered = item
                    if self.suppressed:
                        message = message.with_note(suppressed_note(self.suppressed))
                        self.suppressed = Counter()
                    await self._deliver(message)
                else:
                    self._suppress(item)
            finally:
                self.queue.task_done()

    async def _deliver(self, message: Rendered) -> None:
        assert self.channel is not None
        attempts = self.retry.attempts + 1
        error = DeliveryError("not sent", retryable=False)
        for attempt in range(1, attempts + 1):
            try:
                await self.channel.send(message)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:
                # A bug in a channel must not kill the worker (or reach the engine).
                error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=False)
            else:
                self.stats.sent += 1
                log_event(
                    log, "notification sent", level=logging.DEBUG, channel=self.name, event=message.kind,
                    attempts=attempt, bot=message.bot,
                )  # fmt: skip
                return
            if not error.retryable or attempt == attempts:
                break
            backoff = self.retry.backoff_seconds * 2 ** (attempt - 1)
            delay = min(
                error.retry_after if error.retry_after is not None else backoff,
                self.retry.max_backoff_seconds,
            )
            self.stats.retries += 1
            log_event(
                log, "notification not sent, retrying", level=logging.WARNING, channel=self.name,
                event=message.kind, attempt=attempt, retry_in=round(delay, 3),
                error=redact_text(str(error), self.registry), bot=message.bot,
            )  # fmt: skip
            await asyncio.sleep(delay)
        self.stats.failed += 1
        log_event(
            log, "notification not delivered", level=logging.ERROR, channel=self.name, event=message.kind,
            attempts=attempt, error=redact_text(str(error), self.registry), bot=message.bot,
        )  # fmt: skip


def _drop_stop_markers(queue: asyncio.Queue[Any]) -> None:
    # A worker cancelled on timeout leaves its marker behind; a later start() must not stop at once.
    kept = []
    while not queue.empty():
        item = queue.get_nowait()
        queue.task_done()
        if item is not _STOP:
            kept.append(item)
    for item in kept:
        queue.put_nowait(item)


class Notifier:
    """Sends engine events to the channels of a ``NotificationsConfig``.

        notifier = Notifier(config.notifications, resolve_secret=resolve_secret, mode="paper")
        await notifier.start()
        notifier.notify(TradeOpened(bot="btc", pair="BTC/USDT", side="long", price=64000, amount=0.01))
        ...
        await notifier.stop()

    Secrets (``env:`` references) are resolved here, at construction, so a missing one fails at
    start-up with a ``NotifyConfigError``; resolved values are registered with the log redaction.
    ``http_client`` replaces the ``httpx.AsyncClient`` the notifier would create (tests, proxies).
    """

    def __init__(
        self,
        config: NotificationsConfig,
        *,
        resolve_secret: SecretResolver = environ_resolver,
        mode: str | None = None,
        http_client: Any = None,
        secrets: SecretRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.mode = mode
        self._resolve = resolve_secret
        self._registry = SECRETS if secrets is None else secrets
        self._clock = clock
        self._client = http_client
        self._own_client = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._helpers: list[asyncio.Task[None]] = []
        self._workers: list[_Worker] = []
        self._build()

    # -- construction ------------------------------------------------------------------------------

    def _value(self, raw: str, where: str, *, secret: bool = False) -> str:
        if not is_env_ref(raw):
            if secret:
                self._registry.register(raw)
            return raw
        try:
            value = self._resolve(raw)
        except Exception as exc:
            raise NotifyConfigError(f"{where}: cannot resolve {raw}: {exc}") from None
        if not isinstance(value, str) or not value:
            raise NotifyConfigError(f"{where}: {raw} resolved to an empty value")
        # Anything that came from the environment is treated as a secret: usernames and webhook
        # URLs included (chat-service webhook URLs carry their token).
        self._registry.register(value)
        return value

    def _add(self, name: str, events: Any, rate_limit: RateLimit, retry: RetryPolicy, factory: Any) -> None:
        self._workers.append(
            _Worker(
                name=name,
                events=frozenset(events),
                rate_limit=rate_limit,
                retry=retry,
                factory=factory,
                queue_size=self.config.queue_size,
                clock=self._clock,
                registry=self._registry,
            )
        )

    def _build(self) -> None:
        # Channel modules import httpx; they are imported here so that loading the config models stays light.
        from engine.notify._email import EmailChannel
        from engine.notify._telegram import TelegramChannel
        from engine.notify._webhook import WebhookChannel

        cfg = self.config
        if cfg.telegram is not None and cfg.telegram.enabled:
            tg = cfg.telegram
            token = self._value(tg.token, "notifications.telegram.token")
            self._add("telegram", tg.events, tg.rate_limit, tg.retry, lambda c: TelegramChannel(tg, token, c))
        for i, wh in enumerate(cfg.webhooks):
            if not wh.enabled:
                continue
            where = f"notifications.webhooks[{i}]"
            url = self._value(wh.url, f"{where}.url")
            if not re.match(r"https?://[^/\s]+", url):
                raise NotifyConfigError(f"{where}.url: {wh.url} does not hold an http:// or https:// URL")
            secret = None if wh.secret is None else self._value(wh.secret, f"{where}.secret")
            headers = {
                k: self._value(v, f"{where}.headers.{k}", secret=is_sensitive_key(k))
                for k, v in wh.headers.items()
            }

            def make(
                client: Any, wh: Any = wh, i: int = i, url: str = url, s: Any = secret, h: Any = headers
            ) -> Channel:
                return WebhookChannel(wh, index=i, url=url, secret=s, headers=h, client=client)

            self._add(f"webhook:{wh.name or i}", wh.events, wh.rate_limit, wh.retry, make)
        if cfg.email is not None and cfg.email.enabled:
            em = cfg.email
            user = None if em.username is None else self._value(em.username, "notifications.email.username")
            password = (
                None if em.password is None else self._value(em.password, "notifications.email.password")
            )
            self._add(
                "email",
                em.events,
                em.rate_limit,
                em.retry,
                lambda _c: EmailChannel(em, username=user, password=password),
            )

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(w.name for w in self._workers)

    @property
    def running(self) -> bool:
        return self._loop is not None

    def stats(self) -> dict[str, ChannelStats]:
        return {w.name: ChannelStats(**vars(w.stats)) for w in self._workers}

    async def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if self._client is None and self._workers:
            import httpx

            self._client = httpx.AsyncClient(headers={"User-Agent": "yaml-trading-engine-notify/1"})
            self._own_client = True
        for worker in self._workers:
            worker.channel = worker.factory(self._client)
            worker.task = asyncio.create_task(worker.run(), name=f"notify:{worker.name}")
            self._tasks.append(worker.task)

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message has been handled (sent, failed or suppressed)."""
        try:
            await asyncio.wait_for(asyncio.gather(*(w.queue.join() for w in self._workers)), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), then stop the workers and the HTTP client."""
        if self._loop is None:
            return
        for helper in self._helpers:
            helper.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        self._helpers.clear()
        for worker in self._workers:
            worker.queue.put_nowait(_STOP)
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in self._workers:
            _drop_stop_markers(worker.queue)
            if worker.suppressed:
                log_event(
                    log, "notifications suppressed and not reported before stop", level=logging.WARNING,
                    channel=worker.name, count=sum(worker.suppressed.values()),
                )  # fmt: skip
        self._tasks.clear()
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client, self._own_client = None, False
        self._loop = self._loop_thread = None

    async def __aenter__(self) -> Notifier:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def start_daily_summary(self, provider: SummaryProvider) -> asyncio.Task[None]:
        """Send ``provider(since, until)`` every day at ``config.daily_summary_at`` (UTC) until ``stop()``."""
        task = asyncio.create_task(
            run_daily_summaries(self.notify, provider, at=self.config.daily_summary_at),
            name="notify:daily-summary",
        )
        self._helpers.append(task)
        return task

    # -- sending -----------------------------------------------------------------------------------

    def notify(self, event: Event) -> None:
        """Queue an event for every channel subscribed to its kind. Never blocks, never raises;
        safe to call from other threads once started."""
        try:
            message = render(event, mode=self.mode or current_context().mode)
        except Exception:
            log.exception("cannot render a %s notification", getattr(event, "kind", type(event).__name__))
            return
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._dispatch, message)
        else:
            self._dispatch(message)

    def _dispatch(self, message: Rendered) -> None:
        for worker in self._workers:
            if message.kind in worker.events:
                worker.offer(message)


class NotificationLogHandler(logging.Handler):
    """Turns ERROR log records from anywhere in the engine into ``error`` notifications.

    Records from the notifier itself and the HTTP client are skipped, so a failing channel cannot
    feed itself. The record is redacted before it becomes a message.
    """

    _SKIP = ("engine.notify", "httpx", "httpcore")

    def __init__(self, notifier: Notifier, level: int = logging.ERROR) -> None:
        super().__init__(level)
        self.notifier = notifier
        self.addFilter(ContextFilter())
        self.addFilter(RedactingFilter(notifier._registry))

    def emit(self, record: logging.LogRecord) -> None:
        if any(record.name == p or record.name.startswith(p + ".") for p in self._SKIP):
            return
        try:
            message = record.getMessage()
            if record.exc_text:
                message += "\n" + record.exc_text.strip().splitlines()[-1]
            self.notifier.notify(
                ErrorEvent(
                    message=message,
                    bot=getattr(record, "bot", None),
                    where=record.name,
                    mode=getattr(record, "mode", None),
                )
            )
        except Exception:
            self.handleError(record)
