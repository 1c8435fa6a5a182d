"""The runtime: many bots on one event loop, fed closed candles, with a shared portfolio risk manager,
failure containment, hot reload and a graceful stop.

    runtime = Runtime(RuntimeConfig(bots_dir=Path("bots"), ...), factory, feed)
    await runtime.run()          # until the replay ends or request_stop() is called

Each bot is its own asyncio task reading its own queue of candle batches. A bot that raises is
reloaded from its last committed checkpoint and retried with exponential backoff; after
``max_attempts`` the candle is skipped for that bot (recorded as an error) and the bot carries on.
Other bots never see it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.runtime.bot import BotRunner, BotView, config_hash
from engine.runtime.feed import Batch, ReplayFeed
from engine.runtime.loader import LoadResult, load_bots
from engine.runtime.portfolio import PortfolioLimits, PortfolioRisk
from engine.runtime.shared_signals import SharedSignals
from engine.store import (
    BotStatus,
    EventCategory,
    LeaseLostError,
    acquire_lease,
    new_owner_id,
    record_event,
    release_lease,
    renew_lease,
    set_bot_status,
)

__all__ = ["LEASE_NAME", "Runtime", "RuntimeConfig"]

LEASE_NAME = "engine:runtime"
log = logging.getLogger("engine.runtime")
reload_log = logging.getLogger("engine.reload")
error_log = logging.getLogger("engine.errors")


@dataclass(frozen=True)
class RuntimeConfig:
    bots_dir: Path
    strategies_dir: Path | None = None
    profile: str | None = None
    limits: PortfolioLimits = field(default_factory=PortfolioLimits)
    watch: bool = False
    max_attempts: int = 5
    backoff: float = 0.5  # first retry delay in seconds, doubled per attempt, capped at 30 s
    lease_ttl: float = 30.0
    queue_size: int = 4


@dataclass
class _Slot:
    runner: BotRunner
    queue: asyncio.Queue[Batch | None]
    task: asyncio.Task[None] | None = None


class Runtime:
    def __init__(
        self, config: RuntimeConfig, factory: async_sessionmaker[AsyncSession], feed: ReplayFeed
    ) -> None:
        self.config = config
        self.factory = factory
        self.feed = feed
        self.portfolio = PortfolioRisk(config.limits)
        self.slots: dict[str, _Slot] = {}
        self.stopped: dict[str, BotView] = {}
        self.files: dict[Path, str] = {}
        self.file_errors: dict[Path, str] = {}
        self.owner = new_owner_id()
        self._stop = asyncio.Event()
        self._lease = None
        self._tasks: list[asyncio.Task[None]] = []
        bind = factory.kw.get("bind")
        sqlite = bind is not None and bind.url.get_backend_name() == "sqlite"
        self._write_lock = asyncio.Lock() if sqlite else None
        self.shared = SharedSignals()

    # --- views ----------------------------------------------------------------------------------

    def views(self) -> list[BotView]:
        views = {**self.stopped, **{name: slot.runner.view for name, slot in self.slots.items()}}
        return [views[name] for name in sorted(views)]

    def runner(self, name: str) -> BotRunner:
        return self.slots[name].runner

    def request_stop(self) -> None:
        self._stop.set()

    # --- run --------------------------------------------------------------------------------------

    async def run(self, loaded: LoadResult | None = None) -> None:
        """Take the lease, start every valid bot, play the feed until it ends or a stop is requested."""
        await self.start(loaded)
        try:
            await self.pump()
        finally:
            await self.stop()

    async def start(self, loaded: LoadResult | None = None) -> None:
        """Take the lease (or raise LeaseHeldError), then start every valid bot of the directory."""
        ttl = timedelta(seconds=self.config.lease_ttl)
        self._lease = await acquire_lease(self.factory, LEASE_NAME, self.owner, ttl=ttl)
        self._tasks = [asyncio.create_task(self._renew(ttl))]
        if self.config.watch:
            self._tasks.append(asyncio.create_task(self._watch()))
        try:
            loaded = loaded or await asyncio.to_thread(load_bots, self.config.bots_dir, self.config.profile)
            await self._report_file_errors(loaded)
            self.files = dict(loaded.files)
            for bot in loaded.bots.values():
                await self._try_start(bot)
        except BaseException:
            await self.stop()  # the bots started so far, the lease
            raise
        async with self.factory() as session, session.begin():
            await record_event(
                session,
                EventCategory.SYSTEM,
                "engine_started",
                f"engine started with {len(self.slots)} bot(s)",
            )

    async def stop(self) -> None:
        """Stop every bot after its current candle (all queued ones when the feed simply ended), then
        give the lease back."""
        for task in self._tasks:
            task.cancel()
        for name in list(self.slots):
            await self._stop_bot(name, drain=not self._stop.is_set())
        if self._lease is not None:
            await release_lease(self.factory, self._lease)
            self._lease = None

    async def pump(self) -> None:
        """Hand the feed's batches to the bots until the feed ends or a stop is requested."""
        stop = asyncio.create_task(self._stop.wait())
        batches = self.feed.batches()
        try:
            while not self._stop.is_set():
                nxt = asyncio.ensure_future(anext(batches))
                done, _ = await asyncio.wait({nxt, stop}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    nxt.cancel()
                    break
                try:
                    batch = nxt.result()
                except StopAsyncIteration:
                    break
                await self.dispatch(batch)
        finally:
            stop.cancel()

    async def dispatch(self, batch: Batch) -> None:
        """Queue ``batch`` for every bot trading one of its series (waits when a bot's queue is full)."""
        self.portfolio.observe_time(batch.close_time)
        received = time.perf_counter()
        for slot in list(self.slots.values()):
            if any(key in batch.candles for key in slot.runner.series):
                await slot.queue.put((batch, received))  # type: ignore[arg-type]

    async def settle(self) -> None:
        """Wait until every bot has processed everything queued so far."""
        for slot in list(self.slots.values()):
            await slot.queue.join()

    # --- one bot ------------------------------------------------------------------------------------

    async def _start_bot(self, loaded) -> None:
        runner = BotRunner(loaded, self.factory, self.feed, self.portfolio, self._write_lock, self.shared)
        for key in runner.series:
            self.feed.add(key)
        await runner.start()
        slot = _Slot(runner, asyncio.Queue(self.config.queue_size))
        self.slots[runner.name] = slot
        self.stopped.pop(runner.name, None)
        async with self.factory() as session, session.begin():
            await set_bot_status(session, runner.bot_id, BotStatus.RUNNING)  # type: ignore[arg-type]
        runner.view.status = "running"
        slot.task = asyncio.create_task(self._bot_loop(slot), name=f"bot:{runner.name}")
        log.info("bot %s started (%s, %s)", runner.name, ", ".join(runner.pairs), runner.timeframe)

    async def _try_start(self, loaded) -> bool:
        """Start a bot; a bot that cannot start (no candles for a pair, ...) is reported, not fatal."""
        from dsl.errors import DiagnosticError

        try:
            await self._start_bot(loaded)
        except (DiagnosticError, ValueError, OSError) as error:
            name = loaded.model.bot
            text = (
                "; ".join(d.headline() for d in error.diagnostics)
                if isinstance(error, DiagnosticError)
                else str(error)
            )
            message = f"{name}: cannot start: {text}"
            error_log.error(message)
            self.file_errors[loaded.path] = message
            async with self.factory() as session, session.begin():
                await record_event(session, EventCategory.ERROR, "bot_start_failed", message)
            return False
        return True

    async def _stop_bot(self, name: str, *, drain: bool = True) -> None:
        """Let the bot finish its current candle (and, with ``drain``, the queued ones), then stop it.
        Open positions stay open and recorded; they resume when the bot starts again."""
        slot = self.slots.pop(name, None)
        if slot is None:
            return
        if not drain:
            while not slot.queue.empty():
                slot.queue.get_nowait()
                slot.queue.task_done()
        await slot.queue.put(None)
        if slot.task is not None:
            await slot.task
        self.portfolio.remove(name)
        slot.runner.view.status = "stopped"
        self.stopped[name] = slot.runner.view
        async with self.factory() as session, session.begin():
            await set_bot_status(session, slot.runner.bot_id, BotStatus.STOPPED)  # type: ignore[arg-type]

    async def _bot_loop(self, slot: _Slot) -> None:
        runner = slot.runner
        while True:
            item = await slot.queue.get()
            try:
                if item is None:
                    return
                batch, received = item  # type: ignore[misc]
                await self._process(runner, batch, received)
            finally:
                slot.queue.task_done()

    async def _process(self, runner: BotRunner, batch: Batch, received: float) -> None:
        delay = self.config.backoff
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                await runner.on_batch(batch, received)
            except Exception as error:
                runner.view.errors += 1
                runner.view.last_error = f"{type(error).__name__}: {error}"
                runner.view.status = "retrying"
                error_log.exception("bot %s failed on a candle (attempt %d)", runner.name, attempt)
                final = attempt == self.config.max_attempts
                await self._record_failure(runner, error, attempt, final)
                if final:
                    runner.view.status = "error"
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                if runner.view.status != "running":
                    runner.view.status = "running"
                    async with self.factory() as session, session.begin():
                        await set_bot_status(session, runner.bot_id, BotStatus.RUNNING)  # type: ignore[arg-type]
                return

    async def _record_failure(self, runner: BotRunner, error: Exception, attempt: int, final: bool) -> None:
        message = f"{runner.name}: {type(error).__name__}: {error}"
        message += " (candle skipped)" if final else f" (attempt {attempt}, retrying)"
        try:
            async with self.factory() as session, session.begin():
                await record_event(
                    session,
                    EventCategory.ERROR,
                    "bot_failed",
                    message,
                    bot_id=runner.bot_id,
                    data={"attempt": attempt, "final": final},
                )
                await set_bot_status(
                    session,
                    runner.bot_id,
                    BotStatus.ERROR,
                    error=message,  # type: ignore[arg-type]
                )
        except Exception:
            error_log.exception("could not record the failure of bot %s", runner.name)

    # --- lease --------------------------------------------------------------------------------------

    async def _renew(self, ttl: timedelta) -> None:
        while True:
            await asyncio.sleep(ttl.total_seconds() / 3)
            try:
                self._lease = await renew_lease(self.factory, self._lease, ttl=ttl)  # type: ignore[arg-type]
            except LeaseLostError:
                error_log.error("lease lost to another engine: stopping")
                self._lease = None
                self.request_stop()
                return
            except Exception:
                error_log.exception("lease renewal failed")

    # --- hot reload ---------------------------------------------------------------------------------

    async def _watch(self) -> None:
        from watchfiles import awatch

        paths = [
            p for p in (self.config.bots_dir, self.config.strategies_dir) if p is not None and p.exists()
        ]
        async for _changes in awatch(*paths, stop_event=self._stop, debounce=200, step=50):
            try:
                await self.reload()
            except Exception:
                error_log.exception("reload failed")

    async def reload(self) -> LoadResult:
        """Validate every bot file again and apply only the differences (bot id + configuration hash)."""
        loaded = await asyncio.to_thread(load_bots, self.config.bots_dir, self.config.profile)
        await self._report_file_errors(loaded)
        broken_names = {self.files[path] for path in loaded.errors if path in self.files}
        for name, bot in loaded.bots.items():
            slot = self.slots.get(name)
            if slot is None:
                if await self._try_start(bot):
                    await self._reload_event(name, "started", f"{name}: new bot started")
                continue
            runner = slot.runner
            if config_hash(bot) == runner.hash:
                continue
            if bot.model.pairs == list(runner.pairs) and bot.strategy.timeframe == runner.timeframe:
                runner.replace(bot)
                await self._reload_event(
                    name, "staged", f"{name}: new configuration validated, applies at the next candle close"
                )
            else:
                await self._stop_bot(name)
                if not await self._try_start(bot):
                    continue
                await self._reload_event(
                    name, "restarted", f"{name}: pairs or timeframe changed, bot restarted"
                )
        for name in list(self.slots):
            if name not in loaded.bots and name not in broken_names:
                await self._stop_bot(name)
                await self._reload_event(
                    name, "removed", f"{name}: bot file removed, bot stopped (positions kept)"
                )
        self.files = {**{p: n for p, n in self.files.items() if p in loaded.errors}, **loaded.files}
        return loaded

    async def _reload_event(self, name: str, kind: str, message: str) -> None:
        reload_log.info(message)
        slot = self.slots.get(name)
        bot_id = slot.runner.bot_id if slot else None
        async with self.factory() as session, session.begin():
            await record_event(session, EventCategory.RELOAD, kind, message, bot_id=bot_id)

    async def _report_file_errors(self, loaded: LoadResult) -> None:
        new = {p: e for p, e in loaded.errors.items() if self.file_errors.get(p) != e}
        self.file_errors = dict(loaded.errors)
        for path, message in new.items():
            reload_log.error("invalid bot file, not (re)loaded: %s", message)
            name = self.files.get(path)
            slot = self.slots.get(name) if name else None
            if slot is not None:
                slot.runner.view.last_error = message
            async with self.factory() as session, session.begin():
                await record_event(
                    session,
                    EventCategory.RELOAD,
                    "invalid",
                    message,
                    bot_id=slot.runner.bot_id if slot else None,
                    data={"file": str(path)},
                )
