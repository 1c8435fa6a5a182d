"""Starting and stopping bots by command (the web app's start_bot / stop_bot, through
:mod:`engine.runtime.commands`): a bot stopped by a command stays ``paused`` across reloads and
restarts until a start command resumes it.

:class:`CommandControl` holds no state of its own: it is a part of
:class:`~engine.runtime.orchestrator.Runtime`, which sets the attributes annotated below.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.config import LoadedBot
from engine.runtime.bot import BotView
from engine.runtime.commands import Outcome
from engine.store import BotStatus

T = TypeVar("T")
log = logging.getLogger("engine.runtime")


class CommandControl:
    """The command part of the runtime."""

    # State owned by Runtime.__init__.
    config: Any  # RuntimeConfig
    factory: async_sessionmaker[AsyncSession]
    files: dict[Path, str]
    file_errors: dict[Path, str]
    held: set[str]
    stopped: dict[str, BotView]
    _write_lock: asyncio.Lock | None

    if TYPE_CHECKING:  # defined by Runtime (stubs here would shadow them)

        async def _try_start(self, loaded: LoadedBot) -> bool: ...

        async def _stop_bot(self, name: str, **how: Any) -> None: ...

        async def _configure_alerts(self) -> None: ...

    async def write(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` (a write transaction) behind the bots' SQLite write lock, when there is one."""
        if self._write_lock is None:
            return await work()
        async with self._write_lock:
            return await work()

    async def start_by_command(self, name: str) -> Outcome:
        """Start a bot that is not running (a paused one included) from its current file."""
        from dsl.errors import DiagnosticError
        from engine.config import load_bot

        path = next((p for p, n in self.files.items() if n == name), None)
        if path is None or path in self.file_errors:
            why = self.file_errors.get(path) if path is not None else None
            message = f"{name}: no valid bot file" + (f": {why}" if why else f" in {self.config.bots_dir}")
            return Outcome(message, error=message)
        try:
            bot = await asyncio.to_thread(load_bot, path, self.config.profile)
        except (DiagnosticError, OSError, ValueError) as error:
            text = (
                "; ".join(d.headline() for d in error.diagnostics)
                if isinstance(error, DiagnosticError)
                else str(error)
            )
            return Outcome(f"{name}: {text}", error=f"{name}: cannot start: {text}")
        self.held.discard(name)
        if not await self._try_start(bot):
            message = self.file_errors.get(bot.path, f"{name}: cannot start")
            return Outcome(message, error=message)
        await self._configure_alerts()
        return Outcome(f"{name}: started by command")

    async def stop_by_command(self, name: str, finish: Callable[[AsyncSession], Awaitable[None]]) -> None:
        """Stop a running bot after its current candle and keep it stopped (``paused``) across reloads
        and restarts; ``finish`` runs in the transaction that records the status."""
        self.held.add(name)
        await self._stop_bot(name, drain=False, status=BotStatus.PAUSED, finish=finish)

    async def _paused_by_command(self, bots: dict[str, LoadedBot]) -> set[str]:
        from sqlalchemy import select

        from engine.store.models import Bot

        async with self.factory() as session:
            rows = await session.execute(select(Bot.name).where(Bot.status == BotStatus.PAUSED))
            return {name for (name,) in rows if name in bots}

    def _hold_view(self, bot: LoadedBot) -> None:
        name = bot.model.bot
        view = self.stopped.get(name) or BotView(name, "paper")
        view.status = BotStatus.PAUSED.value
        self.stopped[name] = view
        log.info("bot %s stays stopped (paused by a command; a start command resumes it)", name)
