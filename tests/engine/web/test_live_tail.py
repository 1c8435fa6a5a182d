"""``/trades/live`` and ``/events/live`` fed by one shared tail of the store per server (issue 15): one read per tick
whatever the number of sockets, a slow socket dropped without holding up the others, and a resume point
(``?after=``) so a reconnecting page misses nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from engine.store.db import create_engine_for, session_factory, upgrade_async
from engine.store.enums import BotMode, PositionSide
from engine.store.models import Bot, EquitySnapshot, Trade
from engine.web import live_tail
from engine.web.app import create_api
from engine.web.live_tail import CANDLES, EVENTS, StoreTail

from .conftest import _KEYS
from .test_web_live_and_cli import _live_setup


async def _trade(sessions, pair: str = "BTC/USDT") -> int:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    async with sessions() as db, db.begin():
        if await db.scalar(select(Bot.id).limit(1)) is None:
            db.add(Bot(name="b", config_hash="", mode=BotMode.PAPER))
            await db.flush()
        row = Trade(
            bot_id=1,
            pair=pair,
            side=PositionSide.LONG,
            open_time=now,
            close_time=now,
            open_price=1,
            close_price=2,
            amount=1,
            profit_ratio=1.0,
            profit_abs=1,
            fees=0,
            exit_reason="roi",
        )
        db.add(row)
        await db.flush()
        return row.id


@pytest.fixture
async def sessions(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine_for(f"sqlite:///{tmp_path / 'e.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def sid(sessions) -> str:  # type: ignore[no-untyped-def]
    """A live session of a viewer, for subscribers that stay signed in."""
    from engine.web.auth import accounts

    async with sessions() as db, db.begin():
        user = await accounts.create_user(db, "w", "w@example.org", "correct horse battery", "viewer")
        user.totp_enabled = True
        return (await accounts.open_session(db, user, _KEYS, "t")).session_id


async def test_one_read_per_tick_feeds_every_subscriber(sessions, sid: str) -> None:  # type: ignore[no-untyped-def]
    tail = StoreTail(sessions, interval=3600)  # polled by hand here
    subs = [await tail.subscribe(sid, "viewer") for _ in range(50)]
    await tail.close()  # no background reads: polled by hand below
    ids = [await _trade(sessions) for _ in range(3)]
    assert await tail.poll() == 3 and tail.queries == 1
    for sub in subs:
        assert [sub.queue.get_nowait()[0] for _ in range(3)] == ids and sub.queue.empty()
    await tail.close()


async def test_a_slow_subscriber_is_dropped_and_the_others_get_everything(sessions, sid: str) -> None:  # type: ignore[no-untyped-def]
    tail = StoreTail(sessions, interval=3600, queue_size=2)
    slow, fast = await tail.subscribe(sid, "viewer"), await tail.subscribe(sid, "viewer")
    await tail.close()  # no background reads: polled by hand below
    got = []
    for _ in range(5):
        await _trade(sessions)
        await tail.poll()
        while not fast.queue.empty():
            got.append(fast.queue.get_nowait()[0])
    assert slow.dropped and not fast.dropped and len(got) == 5
    assert tail.subscribers == 1  # the slow one no longer slows anything
    await tail.close()


def test_a_reconnecting_socket_resumes_after_its_last_trade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_tail, "POLL_SECONDS", 0.05)
    ctx, token = _live_setup(tmp_path)
    client = TestClient(create_api(ctx), base_url="https://testserver")
    first, second, third = (asyncio.run(_trade(ctx.sessions, f"P{i}/USDT")) for i in range(3))
    with client.websocket_connect(f"/trades/live?token={token}&after={first}") as ws:
        assert [ws.receive_json()["id"] for _ in range(2)] == [second, third]  # the missed ones, in order
        fourth = asyncio.run(_trade(ctx.sessions, "P3/USDT"))
        assert ws.receive_json()["id"] == fourth  # then the live ones, none twice


async def test_one_query_checks_every_socket_s_session(sessions) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import event

    from engine.web.auth import accounts

    async with sessions() as db, db.begin():
        user = await accounts.create_user(db, "v", "v@example.org", "correct horse battery", "viewer")
        user.totp_enabled = True
        alive = await accounts.open_session(db, user, _KEYS, "t")
        gone = await accounts.open_session(db, user, _KEYS, "t")
        await accounts.revoke_sessions(db, user.id, reason="logout", only=gone.session_id)
    tail = StoreTail(sessions, interval=3600)
    keep = [await tail.subscribe(alive.session_id, "viewer") for _ in range(30)]
    ended = [await tail.subscribe(gone.session_id, "viewer") for _ in range(30)]
    wrong_role = await tail.subscribe(alive.session_id, "admin")  # the token said admin: no longer true
    await tail.close()  # no background reads: polled by hand below
    statements: list[str] = []
    bind = sessions.kw["bind"].sync_engine
    listener = lambda *args: statements.append(args[2]) if args[2].startswith("SELECT") else None  # noqa: E731
    event.listen(bind, "before_cursor_execute", listener)
    await tail.poll()
    event.remove(bind, "before_cursor_execute", listener)
    assert len(statements) == 2  # the sessions of all 61 sockets, then the new trades
    assert all(s.ended and s.queue.get_nowait() == (0, "") for s in ended) and wrong_role.ended
    assert not any(s.ended for s in keep) and tail.subscribers == 30
    await tail.close()


async def test_events_reach_each_role_as_it_may_see_them(sessions, sid: str) -> None:  # type: ignore[no-untyped-def]
    from engine.store import EventCategory, record_event

    tail = StoreTail(sessions, EVENTS, interval=3600)
    viewer = await tail.subscribe(sid, "viewer")
    trader = await tail.subscribe(sid, "viewer", detail=True)  # same session: only the rendering differs
    await tail.close()  # no background reads: polled by hand below
    async with sessions() as db, db.begin():
        await record_event(
            db, EventCategory.RISK, "limits_changed", "portfolio limits changed by root", data={"by": "root"}
        )
    assert await tail.poll() == 1
    seen, detailed = json.loads(viewer.queue.get_nowait()[1]), json.loads(trader.queue.get_nowait()[1])
    assert seen["kind"] == detailed["kind"] == "limits_changed" and seen["message"] == detailed["message"]
    assert "data" not in seen and detailed["data"] == {"by": "root"}
    await tail.close()


def test_the_event_socket_streams_what_the_runtime_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.store import EventCategory, record_event

    monkeypatch.setattr(live_tail, "POLL_SECONDS", 0.05)
    ctx, token = _live_setup(tmp_path)
    client = TestClient(create_api(ctx), base_url="https://testserver")

    async def record() -> None:
        async with ctx.sessions() as db, db.begin():
            await record_event(db, EventCategory.ERROR, "bot_failed", "<b>x</b> failed", data={"k": 1})

    with client.websocket_connect(f"/events/live?token={token}") as ws:
        asyncio.run(record())
        event = ws.receive_json()
        assert event["kind"] == "bot_failed" and event["message"] == "<b>x</b> failed"
        assert "data" not in event  # a VIEWER's socket
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/events/live"):
        pass
    assert refused.value.code == 1008


async def test_a_socket_after_a_quiet_spell_starts_from_now(sessions, sid: str) -> None:  # type: ignore[no-untyped-def]
    tail = StoreTail(sessions, interval=0.01, queue_size=4)
    first = await tail.subscribe(sid, "viewer")
    tail.unsubscribe(first)  # nobody listens: the tail stops
    await asyncio.sleep(0.05)
    for _ in range(10):  # more than a queue holds
        await _trade(sessions)
    late = await tail.subscribe(sid, "viewer")
    newest = await _trade(sessions)
    await asyncio.sleep(0.1)
    assert not late.dropped and late.queue.get_nowait()[0] == newest and late.queue.empty()
    await tail.close()


async def test_a_commit_in_this_process_wakes_the_tail_at_once(sessions, sid: str) -> None:  # type: ignore[no-untyped-def]
    tail = StoreTail(sessions, interval=3600)  # no tick would come within the test
    sub = await tail.subscribe(sid, "viewer")
    await asyncio.sleep(0)  # the tail task starts and waits
    trade = await _trade(sessions)  # the runtime of `engine serve --run` commits the same way
    got = await asyncio.wait_for(sub.queue.get(), timeout=30)
    assert got[0] == trade
    async with sessions() as db:  # a read-only transaction wakes nothing
        await db.scalar(select(Trade.id).limit(1))
        await db.commit()
    await asyncio.sleep(0.2)
    assert sub.queue.empty() and tail.queries == 1
    await tail.close()


async def _snapshot(sessions, bot_id: int | None = 1, equity: float = 1000.0) -> int:  # type: ignore[no-untyped-def]
    from engine.store.models import EquitySnapshot

    async with sessions() as db, db.begin():
        if await db.scalar(select(Bot.id).limit(1)) is None:
            db.add(Bot(name="b", config_hash="", mode=BotMode.PAPER))
            await db.flush()
        row = EquitySnapshot(bot_id=bot_id, time=datetime(2026, 1, 1, tzinfo=UTC), equity=equity, cash=500.0)
        db.add(row)
        await db.flush()
        return row.id


def test_the_candle_socket_streams_each_bot_s_candle_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_tail, "POLL_SECONDS", 0.05)
    ctx, token = _live_setup(tmp_path)
    client = TestClient(create_api(ctx), base_url="https://testserver")
    with client.websocket_connect(f"/candles/live?token={token}") as ws:
        first = asyncio.run(_snapshot(ctx.sessions, equity=1001.5))
        candle = ws.receive_json()
        assert candle == {
            "id": first,
            "bot_id": 1,
            "time": "2026-01-01T00:00:00Z",
            "equity": 1001.5,
            "cash": 500.0,
        }
    missed = asyncio.run(_snapshot(ctx.sessions, equity=990.0))  # while the page was away
    with client.websocket_connect(f"/candles/live?token={token}&after={first}") as ws:
        assert ws.receive_json()["id"] == missed
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/candles/live"):
        pass
    assert refused.value.code == 1008


async def test_a_page_watcher_gets_each_batch_and_keeps_the_tail_running(sessions, sid: str) -> None:  # type: ignore[no-untyped-def]
    tail = StoreTail(sessions, CANDLES, interval=3600)
    batches: list[list[int]] = []
    await tail.watch(lambda rows: batches.append([r.bot_id for r in rows]))
    await asyncio.sleep(0)
    assert tail.listening and tail.subscribers == 0
    await _snapshot(sessions, bot_id=1)  # a commit in this process: read at once
    for _ in range(300):
        if batches:
            break
        await asyncio.sleep(0.01)
    assert batches == [[1]]

    def broken(rows: list) -> None:  # type: ignore[type-arg]
        raise ValueError("a page's mistake")

    await tail.watch(broken)
    await _snapshot(sessions, bot_id=None)
    for _ in range(300):
        if len(batches) == 2:
            break
        await asyncio.sleep(0.01)
    assert batches == [[1], [None]]  # the broken watcher did not stop the others
    tail.unwatch(broken)
    tail.unwatch(batches.append)  # not watching: no error
    await tail.close()


def test_a_socket_whose_client_left_ends_without_waiting_for_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting on rows alone, the handler of a vanished client lived until the next row came (and held
    up the server's shutdown)."""
    import time

    monkeypatch.setattr(live_tail, "POLL_SECONDS", 3600)  # no tick: only the client's leaving can end it
    ctx, token = _live_setup(tmp_path)
    client = TestClient(create_api(ctx), base_url="https://testserver")
    with client.websocket_connect(f"/events/live?token={token}"):
        tail = ctx.live_tails["events"]
        assert tail.subscribers == 1
    deadline = time.monotonic() + 10
    while tail.subscribers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tail.subscribers == 0


def test_a_batch_socket_gets_the_rows_read_together_in_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_tail, "POLL_SECONDS", 0.05)
    ctx, token = _live_setup(tmp_path)
    client = TestClient(create_api(ctx), base_url="https://testserver")

    async def three_at_once() -> None:
        async with ctx.sessions() as db, db.begin():
            for equity in (1.0, 2.0, 3.0):
                db.add(
                    EquitySnapshot(bot_id=1, time=datetime(2026, 1, 1, tzinfo=UTC), equity=equity, cash=0.0)
                )

    asyncio.run(_snapshot(ctx.sessions))  # the bot row
    with client.websocket_connect(f"/candles/live?token={token}&batch=true") as ws:
        asyncio.run(three_at_once())
        rows = ws.receive_json()
        assert isinstance(rows, list) and [r["equity"] for r in rows] == [1.0, 2.0, 3.0]


async def test_sign_in_checks_and_tail_polls_do_not_take_the_sqlite_write_lock(
    sessions, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """While another connection (the bots' order writer) is inside a write transaction, a socket's
    sign-in check and a tail's poll still read: they begin plain transactions, not IMMEDIATE ones that
    queue for the write lock (and, once holding it, made the bots' writes wait: a reconnect storm of
    200 sockets stalled a candle close for ~1 s in bench/live_stream.py)."""
    import sqlite3

    from cryptography.fernet import Fernet

    from engine.web.api.context import WebContext
    from engine.web.api.deps import authenticate_access
    from engine.web.auth.crypto import SecretBox

    ctx = WebContext(sessions=sessions, keys=_KEYS, box=SecretBox(Fernet.generate_key()))
    writer = sqlite3.connect(tmp_path / "e.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE bots SET name = name")
    try:

        async def reads() -> None:
            async with ctx.reads()() as db:
                assert await authenticate_access(db, ctx, "not-a-token") is None
                await db.scalar(select(Trade.id).limit(1))
            await StoreTail(ctx.reads(), EVENTS).poll()

        await asyncio.wait_for(reads(), 5)  # IMMEDIATE would wait for the writer (up to 30 s)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
