"""The command pump: the runtime's side of the ``bot_commands`` queue the web app writes (docs/web.md).

Every ``interval`` seconds the pump reads the ``pending`` rows in id order and applies each:

- ``start``: a bot that is not running and whose file is loaded starts; a running bot: ``done``, no effect.
- ``stop``: the bot stops after its current candle and its row's status becomes ``paused`` (stopped by
  an operator). A paused bot stays stopped across reloads and engine restarts until a ``start``.
- ``close_position``: the open position's bot is asked to close that pair at its next candle close
  (``BotRunner.request_close``; a ``command_accepted`` event). The row stays ``pending`` until the bot
  commits that candle, whose transaction marks it ``done``: an engine stopped or killed in between
  applies it again when it starts. A position already closed is ``failed`` with a message.

A command row is marked ``done`` or ``failed`` (with ``handled_at`` and ``error``) in the same
transaction as the event that records its effect. A command that cannot be applied never stops the pump.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store import BotStatus, EventCategory, record_event
from engine.store.models import Bot, BotCommand, Position, utcnow

if TYPE_CHECKING:
    from engine.runtime.orchestrator import Runtime

__all__ = ["CommandPump", "Outcome", "record_command_outcome"]

log = logging.getLogger("engine.commands")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did: ``error`` None means done."""

    message: str
    error: str | None = None

    @property
    def status(self) -> str:
        return "done" if self.error is None else "failed"


def _failed(message: str) -> Outcome:
    return Outcome(message, error=message)


class CommandPump:
    """Consumes ``bot_commands`` for one :class:`Runtime` (started by ``Runtime.start`` as a task)."""

    def __init__(self, runtime: Runtime, *, interval: float = 0.5, batch: int = 50) -> None:
        self.runtime = runtime
        self.interval = interval
        self.batch = batch
        self.handled = 0
        self.accepted = 0

    async def run(self) -> None:
        """Poll until cancelled; a failing poll is logged and retried at the next tick."""
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("command poll failed")
            await asyncio.sleep(self.interval)

    async def poll(self) -> int:
        """Apply every pending command (oldest first); returns how many were handled. Close requests a
        bot is carrying out (still pending until its candle commits) are left to it."""
        count = 0
        while True:
            held = self._held()
            async with self.runtime.factory() as session:
                query = select(BotCommand.id).where(BotCommand.status == "pending")
                if held:
                    query = query.where(BotCommand.id.not_in(held))
                ids = list((await session.execute(query.order_by(BotCommand.id).limit(self.batch))).scalars())
            for command_id in ids:
                await self.handle(command_id)
                count += 1
            if len(ids) < self.batch:
                self.handled += count
                return count

    def _held(self) -> list[int]:
        held: list[int] = []
        for slot in list(self.runtime.slots.values()):
            held.extend(slot.runner.held_commands())
        return held

    async def handle(self, command_id: int) -> Outcome:
        """Apply one command and mark its row; a command already handled (by a concurrent poll) is skipped."""
        async with self.runtime.factory() as session:
            row = await session.get(BotCommand, command_id)
            if row is None or row.status != "pending":
                return Outcome("already handled")
            command, bot_id, position_id = row.command, row.bot_id, row.position_id
            bot = await session.get(Bot, bot_id)
            name = None if bot is None else bot.name
        async with self.runtime.control_lock:
            if name is None:
                outcome = _failed(f"unknown bot id {bot_id}")
                await self._finish(command_id, command, None, outcome)
            elif command == "start":
                outcome = await self._start(command_id, bot_id, name)
            elif command == "stop":
                outcome = await self._stop(command_id, bot_id, name)
            elif command == "close_position":
                outcome = await self._close(command_id, bot_id, name, position_id)
            else:
                outcome = _failed(f"unknown command {command!r}")
                await self._finish(command_id, command, bot_id, outcome)
        log.info("command %d (%s %s): %s", command_id, command, name or bot_id, outcome.message)
        return outcome

    # --- the commands ---------------------------------------------------------------------------

    async def _start(self, command_id: int, bot_id: int, name: str) -> Outcome:
        runtime = self.runtime
        if name in runtime.slots:
            outcome = Outcome(f"{name}: already running")
        else:
            outcome = await runtime.start_by_command(name)
        await self._finish(command_id, "start", bot_id, outcome)
        return outcome

    async def _stop(self, command_id: int, bot_id: int, name: str) -> Outcome:
        runtime = self.runtime
        if name not in runtime.slots:
            outcome = Outcome(f"{name}: not running")
            if name in runtime.files.values():
                # Not running now, but its file would start it at the next restart: keep it stopped.
                runtime.held.add(name)
            await self._finish(command_id, "stop", bot_id, outcome, status=BotStatus.PAUSED)
            return outcome
        outcome = Outcome(f"{name}: stopped by command (stays stopped until a start command)")

        async def finish(session: AsyncSession) -> None:
            await self._record(session, command_id, "stop", bot_id, outcome)

        await runtime.stop_by_command(name, finish)
        return outcome

    async def _close(self, command_id: int, bot_id: int, name: str, position_id: int | None) -> Outcome:
        outcome = await self._close_outcome(command_id, bot_id, name, position_id)
        if outcome.error is not None:
            await self._finish(command_id, "close_position", bot_id, outcome)
            return outcome

        async def accepted() -> None:
            async with self.runtime.factory() as session, session.begin():
                await record_event(
                    session,
                    EventCategory.SYSTEM,
                    "command_accepted",
                    f"close_position: {outcome.message}",
                    bot_id=bot_id,
                    data={"command_id": command_id, "command": "close_position"},
                )

        await self.runtime.write(accepted)
        self.accepted += 1
        return outcome

    async def _close_outcome(
        self, command_id: int, bot_id: int, name: str, position_id: int | None
    ) -> Outcome:
        if position_id is None:
            return _failed("close_position needs a position id")
        async with self.runtime.factory() as session:
            position = await session.get(Position, position_id)
        if position is None or position.bot_id != bot_id:
            return _failed(f"{name}: no position {position_id} for this bot")
        if position.status.value != "open":
            return _failed(f"{name}: position {position_id} ({position.pair}) is already closed")
        slot = self.runtime.slots.get(name)
        if slot is None:
            return _failed(f"{name}: the bot is not running; start it to close {position.pair}")
        request_close: Callable[..., bool] | None = getattr(slot.runner, "request_close", None)
        if request_close is None:
            return _failed(f"{name}: this engine build cannot close a position on request")
        if not request_close(position.pair, command_id):
            return _failed(f"{name}: holds no open position on {position.pair} (it may be closing already)")
        return Outcome(f"{name}: {position.pair} closes at its next candle close")

    # --- bookkeeping ------------------------------------------------------------------------------

    async def _finish(
        self,
        command_id: int,
        command: str,
        bot_id: int | None,
        outcome: Outcome,
        *,
        status: BotStatus | None = None,
    ) -> None:
        async def write() -> None:
            async with self.runtime.factory() as session, session.begin():
                if status is not None and bot_id is not None:
                    bot = await session.get(Bot, bot_id, with_for_update=True)
                    if bot is not None:
                        bot.status = status
                await self._record(session, command_id, command, bot_id, outcome)

        await self.runtime.write(write)

    @staticmethod
    async def _record(
        session: AsyncSession, command_id: int, command: str, bot_id: int | None, outcome: Outcome
    ) -> None:
        await record_command_outcome(session, command_id, command, bot_id, outcome.message, outcome.error)


async def record_command_outcome(
    session: AsyncSession,
    command_id: int,
    command: str,
    bot_id: int | None,
    message: str,
    error: str | None = None,
) -> None:
    """Mark the pending command row ``done`` (``error`` None) or ``failed``, with its event, in the
    caller's transaction. A row handled already is left as it is."""
    row = await session.get(BotCommand, command_id, with_for_update=True)
    if row is None or row.status != "pending":
        return
    status = "done" if error is None else "failed"
    row.status = status
    row.handled_at = utcnow()
    row.error = error
    await record_event(
        session,
        EventCategory.SYSTEM,
        f"command_{status}",
        f"{command}: {message}",
        bot_id=bot_id,
        data={"command_id": command_id, "command": command, "requested_by": row.requested_by},
    )
