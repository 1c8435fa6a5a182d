"""The news process of ``engine run``: fetching, parsing, scoring, deduplicating and storing news in a
process of its own, so none of that competes with the candles for the runtime's event loop or its GIL.

The runtime (engine/sentiment/news_process.py) starts ``python -m engine.sentiment.news_child`` and
talks to it in JSON lines. Parent -> child, on stdin: the settings first (project root, database URL,
the key store's plaintexts: never on the command line or in the environment, where other users of the
machine can read them), then ``ingest`` (one round) and ``granted`` (the write lock is yours); end of
input stops the child. Child -> parent, on stdout: ``ready``; ``lock`` before each write transaction
and ``unlock`` after it (the runtime holds its SQLite write lock in between, so news never writes while
a candle's orders wait for the database); ``observations`` right after each commit (the runtime extends
the bots' reader at once, as it did when news ran on its loop); ``report`` at the end of each round, or
``failed`` with the reason. Logs go to stderr, which the runtime shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from engine.feeds.observations import Observation

__all__ = ["decode_observations", "encode_observations", "main"]

log = logging.getLogger("engine.sentiment")


def encode_observations(observations: list[Observation]) -> list[list[Any]]:
    return [[o.series, o.event_time, o.available_at, o.value, o.source] for o in observations]


def decode_observations(rows: list[list[Any]]) -> list[Observation]:
    return [Observation(str(s), int(e), int(a), float(v), str(src)) for s, e, a, v, src in rows]


class _Channel:
    """This process's side of the pipe: one writer (stdout), one reader task dispatching stdin."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.rounds: asyncio.Queue[None] = asyncio.Queue()
        self.granted: asyncio.Queue[None] = asyncio.Queue()

    def send(self, op: str, **fields: Any) -> None:
        self.out.write(json.dumps({"op": op, **fields}, separators=(",", ":")) + "\n")
        self.out.flush()

    # ``async with channel:`` is the runtime's write lock (the pipeline's ``write_lock``), held by the
    # parent on this process's behalf.
    async def __aenter__(self) -> None:
        self.send("lock")
        await self.granted.get()

    async def __aexit__(self, *exc: object) -> None:
        self.send("unlock")

    def publish(self, observations: list[Observation]) -> None:
        self.send("observations", rows=encode_observations(observations))

    async def read(self, reader: asyncio.StreamReader, stopped: asyncio.Event) -> None:
        while line := await reader.readline():
            op = json.loads(line).get("op")
            if op == "ingest":
                self.rounds.put_nowait(None)
            elif op == "granted":
                self.granted.put_nowait(None)
        stopped.set()  # the runtime closed the pipe (or is gone)


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def serve(settings: dict[str, Any], reader: asyncio.StreamReader, out: TextIO) -> None:
    """Run rounds on request until the input ends."""
    from engine.sentiment.config import load_sentiment_config
    from engine.sentiment.pipeline import NewsPipeline
    from engine.store import create_engine_for, session_factory

    channel = _Channel(out)
    root = Path(settings["root"])
    engine = create_engine_for(settings["url"])
    pipeline = NewsPipeline(
        load_sentiment_config(root),
        session_factory(engine),
        root=root,
        write_lock=channel if settings.get("lock") else None,  # type: ignore[arg-type]
        on_observations=channel.publish,
        store_secrets=settings.get("keys") or {},
    )
    stopped = asyncio.Event()
    reading = asyncio.create_task(channel.read(reader, stopped))
    channel.send("ready")
    try:
        while True:
            next_round = asyncio.create_task(channel.rounds.get())
            ended = asyncio.create_task(stopped.wait())
            await asyncio.wait({next_round, ended}, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if not next_round.done():
                next_round.cancel()
                return
            try:
                report = await pipeline.ingest()
            except Exception as exc:  # the round fails, the process goes on
                log.exception("news ingestion failed")
                channel.send("failed", reason=f"{type(exc).__name__}: {exc}")
                continue
            channel.send("report", report=dataclasses.asdict(report))
    finally:
        reading.cancel()
        await pipeline.aclose()
        await engine.dispose()


async def _main() -> None:
    reader = await _stdin_reader()
    first = await reader.readline()
    if not first:
        return
    await serve(json.loads(first), reader, sys.stdout)


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("ENGINE_LOG_LEVEL", "INFO"),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s [news process] %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())


if __name__ == "__main__":
    main()
