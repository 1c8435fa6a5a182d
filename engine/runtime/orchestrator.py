"""The runtime: many bots on one event loop, fed closed candles, with a shared portfolio risk manager,
failure containment, hot reload and a graceful stop.

    runtime = Runtime(RuntimeConfig(bots_dir=Path("bots"), ...), factory, feed)
    await runtime.run()          # until the replay ends or request_stop() is called

Each bot is its own asyncio task reading its own queue of candle batches. A bot that raises is
reloaded from its last committed checkpoint and retried with exponential backoff; after
``max_attempts`` the candle is skipped for that bot (recorded as an error) and the bot carries on.
Other bots never see it.

The runtime also consumes the web app's commands (:mod:`engine.runtime.commands`), feeds the bots'
notification channels from the event log (:mod:`engine.runtime.alerts`) and keeps one definition of
"P&L today" per bot (:class:`engine.runtime.status.DayStart`). Hot reload
(:mod:`engine.runtime.hot_reload`) and starting/stopping bots by command
(:mod:`engine.runtime.command_control`) are parts of :class:`Runtime` kept in modules of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.config import LoadedBot
from engine.feeds.context import prepare_feeds, uses_external_series
from engine.runtime.alerts import Alerts
from engine.runtime.bot import BotRunner, BotView
from engine.runtime.command_control import CommandControl
from engine.runtime.commands import CommandPump
from engine.runtime.commit import Committer
from engine.runtime.feed import Batch, ReplayFeed
from engine.runtime.feed_refresh import FeedsControl
from engine.runtime.heap import settle_heap
from engine.runtime.hot_reload import HotReload
from engine.runtime.loader import BotFileCache, LoadResult
from engine.runtime.ml_retrain import MLRetrainer, retrain_plans
from engine.runtime.portfolio import PortfolioLimits, PortfolioRisk
from engine.runtime.risk_settings import RiskSettings
from engine.runtime.shared_signals import SharedSignals
from engine.runtime.status import DayStart
from engine.runtime.trade_stream import TradeStreams
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
    command_interval: float | None = 0.5  # seconds between polls of bot_commands (None: no polling)
    alert_interval: float = 1.0  # seconds between reads of the event log for notifications
    # Hand a candle first to the bots whose signals may decide an order, and to the others once those
    # orders are written (see Runtime.dispatch).
    orders_first: bool = True
    # Refresh the feeds the bots read on their schedules (live market data only; never on a replay).
    refresh_feeds: bool = True


@dataclass
class _Slot:
    runner: BotRunner
    queue: asyncio.Queue[Batch | None]
    task: asyncio.Task[None] | None = None
    busy: bool = False  # taking a candle (its queue may be empty meanwhile)


class Runtime(HotReload, CommandControl, FeedsControl):
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
        self.loaded: dict[str, LoadedBot] = {}  # the configuration each known bot runs (or would run)
        self.held: set[str] = set()  # stopped by a command: not started by a reload or a restart
        self.day_starts: dict[str, DayStart] = {}
        self.cache = BotFileCache(config.profile)
        self.commands = CommandPump(self, interval=config.command_interval or 0.5)
        self.risk_settings = RiskSettings(self, interval=config.command_interval or 0.5)
        self.alerts = Alerts(factory, interval=config.alert_interval)
        # Fast exits between closes on the trade stream of a live feed (none on a replay).
        self.trade_streams = TradeStreams(feed)
        # Commands and reloads both start and stop bots: one at a time.
        self.control_lock = asyncio.Lock()
        self._lock_recorded = False
        self.owner = new_owner_id()
        self._stop = asyncio.Event()
        self._lease = None
        self._tasks: list[asyncio.Task[None]] = []
        bind = factory.kw.get("bind")
        sqlite = bind is not None and bind.url.get_backend_name() == "sqlite"
        self._write_lock = asyncio.Lock() if sqlite else None
        # One transaction for every bot whose candle is ready (order intents first), behind the same
        # SQLite write lock as the runtime's other writes.
        self.committer = Committer(factory, lock=self._write_lock)
        self.shared = SharedSignals()
        self.ml_retrain: MLRetrainer | None = (
            None  # models with a retrain: block (engine/runtime/ml_retrain.py)
        )

    # --- views ----------------------------------------------------------------------------------

    def views(self) -> list[BotView]:
        views = {**self.stopped, **{name: slot.runner.view for name, slot in self.slots.items()}}
        for name, view in views.items():
            # One definition of P&L today, shared with `engine status` (see DayStart).
            mark = self.day_starts.get(name)
            if mark is not None and mark.day is not None:
                view.day_start_equity = mark.start_equity
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
            await self.alerts.start()  # from here on, every event may become a notification
            await self.risk_settings.poll()  # limits set in the web app, from the first candle on
            await self._restore_profit_lock()
            await self._start_feeds()
            self._start_ml_retrain()
            if loaded is None:
                loaded = await asyncio.to_thread(self.cache.load, self.config.bots_dir)
            else:
                self.cache.seed(loaded)
            await self._report_file_errors(loaded)
            self.files = dict(loaded.files)
            self.loaded = dict(loaded.bots)
            self.held = await self._paused_by_command(loaded.bots)
            for bot in loaded.bots.values():
                if bot.model.bot in self.held:
                    self._hold_view(bot)
                else:
                    await self._try_start(bot)
            await self._configure_alerts()
            if self.config.command_interval is not None:
                self._tasks.append(asyncio.create_task(self.commands.run(), name="engine:commands"))
                self._tasks.append(asyncio.create_task(self.risk_settings.run(), name="engine:risk"))
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
        settle_heap()

    def _start_ml_retrain(self) -> None:
        try:
            plans = retrain_plans(self.config.bots_dir.resolve().parent)
        except Exception as exc:  # an unreadable models/ folder must not stop the bots
            logging.getLogger("engine.ml").warning("no ML retraining: %s", exc)
            return
        if plans:
            source = getattr(self.feed, "source", None)  # a replay trains on its own data directory
            data_dir = getattr(source, "root", None)
            self.ml_retrain = MLRetrainer(
                self.config.bots_dir.resolve().parent, self.factory, data_dir, plans=plans
            )

    async def stop(self) -> None:
        """Stop every bot after its current candle (all queued ones when the feed simply ended), then
        give the lease back."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.trade_streams.stop()
        for name in list(self.slots):
            await self._stop_bot(name, drain=not self._stop.is_set())
        if self.ml_retrain is not None:  # a replay that ended waits for its retrains; a stop kills them
            await self.ml_retrain.stop(drain=not self._stop.is_set())
        await self.alerts.stop()  # after the bots: their last trades are notified too
        await self._stop_feeds()
        self.committer.close()
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
        """Queue ``batch`` for every bot trading one of its series (waits when a bot's queue is full).

        Orders first: every idle bot computes its signals on the candle now (bots sharing a strategy
        share the computation), and the bots whose signals may decide an order take the candle first;
        the others get it once those orders are written. On one event loop every bot's decision runs in
        turn, so without this an order waited for the decisions of all 100 bots of a benchmark round,
        most of which decide nothing. The bots still decide in their usual order within each group,
        and only the first group's bots can want an entry, so portfolio decisions are unchanged."""
        self.portfolio.observe_time(batch.close_time)
        self.alerts.observe_time(batch.close_time)
        if self.ml_retrain is not None:
            self.ml_retrain.observe_time(batch.close_time)
        received = time.perf_counter()
        targets = [
            slot
            for slot in list(self.slots.values())
            if any(key in batch.candles for key in slot.runner.series)
        ]
        first, later = targets, []
        if self.config.orders_first and len(targets) > 1:
            first, later = [], []
            for slot in targets:
                idle = not slot.busy and slot.queue.empty()
                (first if not idle or slot.runner.prepare(batch) else later).append(slot)
        for slot in first:
            await slot.queue.put((batch, received))  # type: ignore[arg-type]
        if first and later:
            await asyncio.sleep(0)  # the first group takes the candle and hands in its order intents
            # (bounded: a slow database must not hold the other bots back for long)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.committer.urgent_written(), timeout=1.0)
        for slot in later:
            await slot.queue.put((batch, received))  # type: ignore[arg-type]

    async def settle(self) -> None:
        """Wait until every bot has processed everything queued so far."""
        for slot in list(self.slots.values()):
            await slot.queue.join()

    # --- one bot ------------------------------------------------------------------------------------

    async def _start_bot(self, loaded) -> None:
        runner = BotRunner(
            loaded,
            self.factory,
            self.feed,
            self.portfolio,
            self._write_lock,
            self.shared,
            committer=self.committer,
            exchange=await self._stored_key_exchange(loaded),
            feed_reader=self.feed_reader,
        )
        for key in runner.series:
            self.feed.add(key)
        if uses_external_series(loaded.strategy.plan):
            # What its namespaces load on first use (the production model of each ml.<model>: registry
            # read, LightGBM import, model files) is loaded now, in a thread, not at the first close.
            await asyncio.to_thread(prepare_feeds, loaded.strategy.plan)
        await runner.start()
        async with self.factory() as session:
            assert runner.bot_id is not None
            self.day_starts[runner.name] = await DayStart.from_db(session, runner.bot_id)
        slot = _Slot(runner, asyncio.Queue(self.config.queue_size))
        self.slots[runner.name] = slot
        self.loaded[runner.name] = loaded
        self.stopped.pop(runner.name, None)
        async with self.factory() as session, session.begin():
            await set_bot_status(session, runner.bot_id, BotStatus.RUNNING)  # type: ignore[arg-type]
        runner.view.status = "running"
        slot.task = asyncio.create_task(self._bot_loop(slot), name=f"bot:{runner.name}")
        self._follow_feeds(runner.name, loaded)
        self.trade_streams.follow(runner)
        log.info("bot %s started (%s, %s)", runner.name, ", ".join(runner.pairs), runner.timeframe)

    async def _stored_key_exchange(self, loaded):
        """The exchange of a bot whose credentials name keys of the encrypted key store (``store:NAME``),
        opened with the engine's secret key; None otherwise (the bot builds its own from ``env:``)."""
        model = loaded.model
        creds = model.exchange.credentials
        refs = [] if creds is None else [creds.key, creds.secret, creds.password]
        if model.exchange.mode in ("paper", "backtest") or not any(
            isinstance(ref, str) and ref.startswith("store:") for ref in refs
        ):
            return None
        from engine.exchanges import make_exchange
        from engine.exchanges.keystore import load_key_store
        from engine.runtime.execution import ExchangeStartError
        from engine.web.auth.crypto import SecretBoxError

        home = Path(os.environ.get("ENGINE_HOME", "var"))
        try:
            keys = await load_key_store(self.factory, home)
        except SecretBoxError as error:
            raise ExchangeStartError(f"{model.bot}: the key store cannot be opened: {error}") from None
        return make_exchange(model, session_factory=self.factory, key_store=keys)

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

    async def _stop_bot(
        self,
        name: str,
        *,
        drain: bool = True,
        status: BotStatus = BotStatus.STOPPED,
        finish: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> None:
        """Let the bot finish its current candle (and, with ``drain``, the queued ones), then stop it.
        Open positions stay open and recorded; they resume when the bot starts again. ``finish`` runs
        in the transaction that records the new ``status``."""
        slot = self.slots.pop(name, None)
        self._unfollow_feeds(name)
        await self.trade_streams.unfollow(name)
        if slot is None:
            return
        if not drain:
            while not slot.queue.empty():
                slot.queue.get_nowait()
                slot.queue.task_done()
        await slot.queue.put(None)
        if slot.task is not None:
            await slot.task
        # Series no other bot trades are no longer fetched (a bot started again catches up on them).
        in_use = {key for other in self.slots.values() for key in other.runner.series}
        for key in slot.runner.series:
            if key not in in_use:
                self.feed.remove(key)
        await slot.runner.close()  # the exchange connection (exchange modes)
        self.portfolio.remove(name)
        slot.runner.view.status = status.value
        self.stopped[name] = slot.runner.view
        async with self.factory() as session, session.begin():
            await set_bot_status(session, slot.runner.bot_id, status)  # type: ignore[arg-type]
            if finish is not None:
                await finish(session)

    async def _bot_loop(self, slot: _Slot) -> None:
        runner = slot.runner
        while True:
            item = await slot.queue.get()
            try:
                if item is None:
                    return
                batch, received = item  # type: ignore[misc]
                slot.busy = True
                await self._process(runner, batch, received)
            finally:
                slot.busy = False
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
                await self._after_candle(runner)
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

    # --- P&L today, portfolio profit lock, notifications ------------------------------------------------

    async def _after_candle(self, runner: BotRunner) -> None:
        mark = self.day_starts.get(runner.name)
        if mark is not None and runner.last_time > -(2**62):
            import pandas as pd

            mark.observe(pd.Timestamp(runner.last_time, tz="UTC"), runner.trader.equity)
        if self.portfolio.lock_armed and not self._lock_recorded:
            self._lock_recorded = True
            await self._record_lock_armed()

    def apply_limits(self, limits: PortfolioLimits) -> None:
        """Portfolio limits in force from the next candle on (web settings); a changed profit lock arms anew."""
        old, self.portfolio.limits = self.portfolio.limits, limits
        if (old.profit_lock_at, old.profit_lock_keep) != (limits.profit_lock_at, limits.profit_lock_keep):
            self.portfolio.lock_armed = self._lock_recorded = False

    async def _restore_profit_lock(self) -> None:
        """An armed portfolio profit lock survives a restart (same thresholds): it was recorded as an event."""
        from sqlalchemy import select

        from engine.store.models import Event

        self._lock_recorded = False
        limits = self.portfolio.limits
        if limits.profit_lock_at is None:
            return
        async with self.factory() as session:
            row = (
                await session.execute(
                    select(Event)
                    .where(Event.category == EventCategory.RISK, Event.kind == "profit_lock_armed")
                    .order_by(Event.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        data = row.data if row is not None and row.data else {}
        if data.get("activate_at") == limits.profit_lock_at and data.get("keep") == limits.profit_lock_keep:
            self.portfolio.lock_armed = self._lock_recorded = True

    async def _record_lock_armed(self) -> None:
        limits, portfolio = self.portfolio.limits, self.portfolio
        message = (
            f"portfolio profit lock armed: equity {portfolio.total_equity:.6g} is {portfolio.gain():+.2%} "
            f"over the allocated {portfolio.total_capital:.6g}; new entries stop below "
            f"{limits.profit_lock_keep:+.2%}"
        )
        log.info(message)

        async def work() -> None:
            async with self.factory() as session, session.begin():
                await record_event(
                    session,
                    EventCategory.RISK,
                    "profit_lock_armed",
                    message,
                    data={
                        "activate_at": limits.profit_lock_at,
                        "keep": limits.profit_lock_keep,
                        "equity": portfolio.total_equity,
                        "capital": portfolio.total_capital,
                    },
                )

        try:
            await self.write(work)
        except Exception:
            error_log.exception("could not record the portfolio profit lock")

    async def _configure_alerts(self) -> None:
        problems = await self.alerts.configure(
            {name: bot.model.notifications for name, bot in self.loaded.items()}
        )
        for problem in problems:
            error_log.error("notifications: %s", problem)
