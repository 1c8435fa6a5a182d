"""``/trades/live`` with many viewers: the server's one shared tail of the trades table against the
previous design, where every socket polled the store itself (issue 15).

    .venv/bin/python bench/live_trades.py                      # 200 viewer sockets, a trade every 100 ms, 20 s
    .venv/bin/python bench/live_trades.py --clients 50 --seconds 10

The API runs in a subprocess (uvicorn on 127.0.0.1, SQLite store), once per design: ``tail`` is the
real ``/trades/live`` (engine/web/live_tail.py) with the trades written by another process (as by a
separate ``engine run``: read at the next 1 s tick); ``tail, in-process`` writes them inside the server
process, as the runtime of ``engine serve --run`` does (its commits wake the tail at once);
``per-socket`` is a copy of the old handler (each socket: a session check and a trade query every
second) mounted by this script for the comparison. This process signs a viewer in and opens the
sockets. Printed side by side: delivery latency from the trade's commit to each socket (p50/p99), the
server's CPU time over the run (the in-process writer's included), and the SQL statements the server
ran per second (counted in the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi import WebSocket  # module level: the route's annotations are resolved in these globals

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def write_trades(sessions, seconds: float, every: float) -> int:  # type: ignore[no-untyped-def]
    """A closed trade every ``every`` seconds for ``seconds`` (close time: the moment of writing)."""
    from engine.store.enums import PositionSide
    from engine.store.models import Trade

    t0, written = time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        now = datetime.now(UTC)
        async with sessions() as db, db.begin():
            db.add(
                Trade(
                    bot_id=1,
                    pair="BTC/USDT",
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
            )
        written += 1
        await asyncio.sleep(every)
    return written


# --- the server (subprocess) ---------------------------------------------------------------------


def serve(home: Path, port: int, design: str) -> None:
    import uvicorn
    from fastapi import WebSocketDisconnect
    from sqlalchemy import event, func, select

    from engine.store.db import create_engine_for, session_factory
    from engine.store.models import Trade
    from engine.web.api.context import WebContext
    from engine.web.api.deps import authenticate_access
    from engine.web.api.schemas import TradeOut
    from engine.web.app import create_api
    from engine.web.auth.crypto import load_secret_box
    from engine.web.auth.tokens import TokenKeys

    engine = create_engine_for(f"sqlite:///{home / 'engine.db'}")
    statements = [0]
    kinds: dict[str, int] = {}

    def counted(conn, cursor, statement, *rest) -> None:  # type: ignore[no-untyped-def]
        statements[0] += 1
        head = " ".join(statement.split()[:2])
        kinds[head] = kinds.get(head, 0) + 1

    event.listen(engine.sync_engine, "before_cursor_execute", counted)
    ctx = WebContext(
        sessions=session_factory(engine), keys=TokenKeys.load_or_create(home), box=load_secret_box(home)
    )
    app = create_api(ctx)

    @app.websocket("/bench/per-socket")
    async def per_socket(ws: WebSocket, token: str = "") -> None:  # the handler before issue 15
        async with ctx.sessions() as db:
            last_id = await db.scalar(select(func.max(Trade.id))) or 0
        await ws.accept()
        try:
            while True:
                async with ctx.sessions() as db:
                    if await authenticate_access(db, ctx, token) is None:
                        await ws.close(code=1008)
                        return
                    rows = (
                        await db.scalars(select(Trade).where(Trade.id > last_id).order_by(Trade.id))
                    ).all()
                for row in rows:
                    await ws.send_text(TradeOut.model_validate(row).model_dump_json())
                    last_id = row.id
                await asyncio.sleep(1.0)
        except WebSocketDisconnect:
            return

    @app.post("/bench/write")
    async def write(seconds: float, every: float) -> dict[str, int]:
        return {"written": await write_trades(ctx.sessions, seconds, every)}

    @app.get("/bench/statements")
    async def count() -> dict:
        return {"statements": statements[0], "kinds": kinds}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets")


# --- the clients (this process) ------------------------------------------------------------------


async def _setup(home: Path) -> str:
    import pyotp
    from argon2 import PasswordHasher

    from engine.store.db import create_engine_for, session_factory, upgrade_async
    from engine.store.enums import BotMode
    from engine.store.models import Bot
    from engine.web.auth import accounts, passwords, totp
    from engine.web.auth.crypto import load_secret_box
    from engine.web.auth.tokens import TokenKeys

    passwords._HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    engine = create_engine_for(f"sqlite:///{home / 'engine.db'}")
    await upgrade_async(engine)
    keys, box = TokenKeys.load_or_create(home), load_secret_box(home)
    async with session_factory(engine)() as db, db.begin():
        user = await accounts.create_user(db, "v", "v@example.org", PASSWORD, "viewer")
        secret, _ = await accounts.begin_2fa_setup(db, user, box)
        await accounts.activate_2fa(db, user, pyotp.TOTP(secret).at(int(totp.clock())), box, "bench")
        issued = await accounts.open_session(db, user, keys, "bench")
        db.add(Bot(name="b", config_hash="", mode=BotMode.PAPER))
    await engine.dispose()
    return issued.access_token


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(home: Path, token: str, design: str, clients: int, seconds: float, every: float) -> dict:
    import httpx
    import websockets

    from engine.store.db import create_engine_for, session_factory

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(home), str(port), design],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/bench/statements", timeout=1)
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        path = "/bench/per-socket" if design == "per-socket" else "/trades/live"
        latencies: list[float] = []
        seen: list[set[int]] = []
        connected = [0]

        async def client() -> None:
            ids: set[int] = set()
            seen.append(ids)
            async with websockets.connect(f"ws://127.0.0.1:{port}{path}?token={token}", max_queue=None) as ws:
                connected[0] += 1
                async for message in ws:
                    trade = json.loads(message)
                    assert trade["id"] not in ids, f"trade {trade['id']} twice"
                    ids.add(trade["id"])
                    closed = datetime.fromisoformat(trade["close_time"])
                    if closed.tzinfo is None:
                        closed = closed.replace(tzinfo=UTC)
                    latencies.append((datetime.now(UTC) - closed).total_seconds())

        tasks = [asyncio.create_task(client()) for _ in range(clients)]
        while connected[0] < clients:  # every socket connected (and signed in) before the clock starts
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        engine = create_engine_for(f"sqlite:///{home / 'engine.db'}")
        sessions = session_factory(engine)
        cpu0, sql0 = _cpu_seconds(server.pid), httpx.get(f"{base}/bench/statements").json()["statements"]
        t0 = time.monotonic()
        if design == "tail, in-process":  # the writer runs in the server, as the runtime of serve --run
            async with httpx.AsyncClient(timeout=None) as http:  # not blocking this loop's sockets
                answer = await http.post(f"{base}/bench/write", params={"seconds": seconds, "every": every})
            written = answer.json()["written"]
        else:
            written = await write_trades(sessions, seconds, every)
        await asyncio.sleep(3.5)  # the last trades reach every socket
        elapsed = time.monotonic() - t0
        cpu = _cpu_seconds(server.pid) - cpu0
        sql = httpx.get(f"{base}/bench/statements").json()["statements"] - sql0
        failed = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
        if failed:
            print(f"{design}: {len(failed)} sockets failed, e.g. {failed[0]!r}", file=sys.stderr)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()
    finally:
        server.terminate()  # uvicorn waits for open sockets: not for long
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "design": design,
        "delivered": f"{len(latencies)}/{written * clients}",
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "cpu_pct": 100 * cpu / elapsed,
        "sql_per_s": sql / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--every", type=float, default=0.1, help="seconds between two trades")
    args = parser.parse_args()
    if args.serve:
        home, port, design = args.serve
        serve(Path(home), int(port), design)
        return
    rows = []
    for design in ("per-socket", "tail", "tail, in-process"):
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            token = asyncio.run(_setup(home))
            rows.append(asyncio.run(_run(home, token, design, args.clients, args.seconds, args.every)))
    print(f"{args.clients} viewer sockets, a trade every {args.every * 1000:.0f} ms for {args.seconds:.0f} s")
    print(f"{'design':<18} {'delivered':>14} {'p50 ms':>8} {'p99 ms':>8} {'server CPU %':>13} {'SQL/s':>8}")
    for r in rows:
        print(
            f"{r['design']:<18} {r['delivered']:>14} {r['p50_ms']:>8.0f} {r['p99_ms']:>8.0f} "
            f"{r['cpu_pct']:>13.1f} {r['sql_per_s']:>8.0f}"
        )


if __name__ == "__main__":
    main()
