"""Hot reload of the bot and strategy files: watched with watchfiles, validated again (only what
changed), applied as differences: a changed bot switches rules at its next candle close, a new file
starts a bot, a removed one stops it, an invalid one is reported and changes nothing.

:class:`HotReload` holds no state of its own: it is a part of
:class:`~engine.runtime.orchestrator.Runtime`, which sets the attributes annotated below.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.config import LoadedBot
from engine.runtime.bot import config_hash
from engine.runtime.heap import settle_heap
from engine.runtime.loader import BotFileCache, LoadResult
from engine.store import EventCategory, record_event

reload_log = logging.getLogger("engine.reload")
error_log = logging.getLogger("engine.errors")


class HotReload:
    """The reload part of the runtime."""

    # State owned by Runtime.__init__.
    config: Any  # RuntimeConfig
    factory: async_sessionmaker[AsyncSession]
    cache: BotFileCache
    control_lock: asyncio.Lock
    slots: dict[str, Any]  # name -> the runtime's _Slot
    files: dict[Path, str]
    file_errors: dict[Path, str]
    loaded: dict[str, LoadedBot]
    held: set[str]
    trade_streams: Any  # TradeStreams (fast exits between closes)
    _stop: asyncio.Event

    if TYPE_CHECKING:  # defined by Runtime (stubs here would shadow them)

        async def _try_start(self, loaded: LoadedBot) -> bool: ...

        async def _stop_bot(self, name: str, **how: Any) -> None: ...

        async def _configure_alerts(self) -> None: ...

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
        """Validate the bot files again (only what changed, see :class:`BotFileCache`) and apply only the
        differences (bot id + configuration hash)."""
        loaded = await asyncio.to_thread(self.cache.load, self.config.bots_dir)
        async with self.control_lock:
            await self._apply_reload(loaded)
        return loaded

    async def _apply_reload(self, loaded: LoadResult) -> None:
        await self._report_file_errors(loaded)
        broken_names = {self.files[path] for path in loaded.errors if path in self.files}
        staged: list[str] = []
        for name, bot in loaded.bots.items():
            self.loaded[name] = bot
            if name in self.held:
                continue  # stopped by a command: the new file applies when it is started again
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
                self._follow_feeds(name, bot)
                self.trade_streams.follow(runner, bot)  # fast_exit: rules added by the new file
                staged.append(name)
            else:
                await self._stop_bot(name)
                if not await self._try_start(bot):
                    continue
                await self._reload_event(
                    name, "restarted", f"{name}: pairs or timeframe changed, bot restarted"
                )
        if staged:
            # One transaction for every staged bot: a strategy shared by 100 bots is one commit, not 100.
            async with self.factory() as session, session.begin():
                for name in staged:
                    message = f"{name}: new configuration validated, applies at the next candle close"
                    reload_log.info(message)
                    bot_id = self.slots[name].runner.bot_id
                    await record_event(session, EventCategory.RELOAD, "staged", message, bot_id=bot_id)
        for name in list(self.slots):
            if name not in loaded.bots and name not in broken_names:
                await self._stop_bot(name)
                await self._reload_event(
                    name, "removed", f"{name}: bot file removed, bot stopped (positions kept)"
                )
        self.files = {**{p: n for p, n in self.files.items() if p in loaded.errors}, **loaded.files}
        await self._configure_alerts()
        settle_heap()

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
