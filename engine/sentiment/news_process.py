"""The runtime's handle on its news process (engine/sentiment/news_child.py, where the protocol is
described): the same ``ingest()``/``aclose()`` as a :class:`~engine.sentiment.pipeline.NewsPipeline`, so
the scheduler does not know the work happens elsewhere.

The process starts with the first round and again after it died (the round that saw it die fails and
says why; the scheduler logs it and the next round starts a new one). While it writes, this side holds
the runtime's write lock for it, and what it stored extends the bots' reader as soon as it committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from engine.feeds.observations import Observation
from engine.sentiment.news_child import decode_observations
from engine.sentiment.pipeline import IngestReport

__all__ = ["NewsProcess", "NewsProcessError", "shareable_url"]

log = logging.getLogger("engine.sentiment")
START_TIMEOUT_S = 120.0  # imports and the first database connection, on a busy machine
STOP_TIMEOUT_S = 10.0


def shareable_url(factory: Any) -> str | None:
    """The database URL behind a session factory, password included, if another process can open the
    same database (not an in-memory SQLite one); None otherwise."""
    from sqlalchemy.ext.asyncio import AsyncEngine

    from engine.store.db import given_url

    bind = getattr(factory, "kw", {}).get("bind")
    if not isinstance(bind, AsyncEngine):
        return None
    url = given_url(bind)
    if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"):
        return None
    return str(url.render_as_string(hide_password=False))


class NewsProcessError(RuntimeError):
    """A round that did not complete: the process failed it, or exited."""


class NewsProcess:
    def __init__(
        self,
        root: Path,
        url: str,
        *,
        write_lock: asyncio.Lock | None = None,
        on_observations: Callable[[list[Observation]], None] | None = None,
        store_secrets: Mapping[str, str] | None = None,
        orders_written: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``url``: the runtime's database (with its password: it travels on the child's stdin).
        ``orders_written``: waited for before each write is granted (the runtime's committer: the order
        intents of a candle close being written go first)."""
        self.root, self.url = root, url
        self.write_lock = write_lock
        self.on_observations = on_observations
        self.store_secrets = dict(store_secrets or {})
        self.orders_written = orders_written
        self.process: asyncio.subprocess.Process | None = None
        self._reading: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._round: asyncio.Future[IngestReport] | None = None
        self._holding = False
        self.started = 0  # processes started so far

    async def ingest(self, since_ns: int | None = None) -> IngestReport:
        if since_ns is not None:
            raise ValueError("the news process fetches from what is stored (since_ns is not supported)")
        await self._running()
        assert self.process is not None and self.process.stdin is not None
        self._round = asyncio.get_running_loop().create_future()
        self._send({"op": "ingest"})
        return await self._round

    async def _running(self) -> None:
        if self.process is not None and self.process.returncode is None:
            return
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "engine.sentiment.news_child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,  # one line carries a round's observations
        )
        self.started += 1
        self._ready = asyncio.get_running_loop().create_future()
        self._send(
            {
                "root": str(self.root),
                "url": self.url,
                "lock": self.write_lock is not None,
                "keys": self.store_secrets,
            }
        )
        self._reading = asyncio.create_task(self._read(self.process), name="engine:news-process")
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT_S)
        except TimeoutError:
            await self._kill()
            raise NewsProcessError(f"the news process did not start within {START_TIMEOUT_S:.0f} s") from None

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while line := await process.stdout.readline():
                try:
                    message = json.loads(line)
                except ValueError:  # a stray print in the child: not ours, never fatal
                    log.warning("news process: unexpected output %r", line[:200])
                    continue
                await self._handle(message)
        finally:
            self._release()
            code = await process.wait()
            why = NewsProcessError(f"the news process exited (code {code})")
            for pending in (self._ready, self._round):
                if pending is not None and not pending.done():
                    pending.set_exception(why)

    async def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        elif op == "lock":
            if self.orders_written is not None:
                await self.orders_written()
            if self.write_lock is not None:
                await self.write_lock.acquire()
                self._holding = True
            self._send({"op": "granted"})
        elif op == "unlock":
            self._release()
        elif op == "observations":
            if self.on_observations is not None:
                self.on_observations(decode_observations(message["rows"]))
        elif op in ("report", "failed") and self._round is not None and not self._round.done():
            if op == "report":
                self._round.set_result(IngestReport(**message["report"]))
            else:
                self._round.set_exception(NewsProcessError(message.get("reason", "the round failed")))

    def _release(self) -> None:
        if self._holding and self.write_lock is not None:
            self._holding = False
            self.write_lock.release()

    async def aclose(self) -> None:
        """End the process: its input closes (it finishes a write it is in), then it is terminated."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("the news process did not stop within %.0f s: killed", STOP_TIMEOUT_S)
            process.kill()
            await process.wait()
        if self._reading is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reading
        self._release()

    async def _kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        self._release()
