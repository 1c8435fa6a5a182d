"""The live event stream under load: 200 viewer sockets while 100 bots run on replay, beside the same
replay with no sockets, in one invocation (issue 15).

    .venv/bin/python bench/live_stream.py                          # 100 bots x 3 pairs, 200 sockets, 30 candles
    .venv/bin/python bench/live_stream.py --bots 20 --clients 50 --candles 10

Set-up as ``engine serve --run``: the runtime and the web API share one process and one event loop, so
the runtime's commits wake the server's shared tails at once (``engine/web/live_tail.py``). Both runs
use bench/live.py's workspace (the example EMA/RSI strategy on 1m candles, one candle every
``--interval`` seconds). In the second run a client process opens ``--clients`` sockets with viewer
tokens, spread over ``/events/live``, ``/candles/live`` and ``/trades/live``, and notes when each row
arrives. Printed side by side: candle close -> order p99 (the runtime's own figure) with and without
the sockets, the process's CPU seconds over the replay, and the delivery latency from a row's commit
(stamped by an ``after_commit`` hook in the server) to its arrival in the client (p50/p99), with how
many rows reached how many sockets. The client process runs on the same 2 cores, so its work competes
with the runtime's: the figures are an upper bound for clients on other machines.

A separate ``engine run`` (runtime in another process) reaches the same tails through the store: its
commits are read at the next tick (1 s, ``POLL_SECONDS``); bench/live_trades.py measures that case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PATHS = ("/events/live", "/candles/live", "/trades/live")
TABLES = {"/events/live": "events", "/candles/live": "equity_snapshots", "/trades/live": "trades"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the client process ------------------------------------------------------------------------


async def _clients(port: int, token: str, count: int, out: Path, batch: bool, alternate: float = 0.0) -> None:
    """``count`` sockets until SIGTERM; with ``alternate`` > 0 they are all closed and opened again every
    ``alternate`` seconds, and the (wall-clock) spans with every socket open are written out too."""
    import websockets

    received: list[tuple[str, int, float]] = []
    spans: list[tuple[float, float]] = []
    changing: list[tuple[float, float]] = []  # sockets opening or closing: neither state
    connected = [0]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def one(path: str) -> None:
        url = f"ws://127.0.0.1:{port}{path}?token={token}" + ("&batch=true" if batch else "")
        async with websockets.connect(url, max_queue=None) as ws:
            connected[0] += 1
            try:
                async for text in ws:
                    now, data = time.time(), json.loads(text)
                    for row in data if isinstance(data, list) else [data]:
                        received.append((path, row["id"], now))
            finally:
                connected[0] -= 1

    async def pause(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    first = True
    while not stop.is_set():
        opening = time.time()
        tasks = [asyncio.create_task(one(PATHS[i % len(PATHS)])) for i in range(count)]
        while connected[0] < count and not stop.is_set():
            await asyncio.sleep(0.05)
        if first:
            (out.parent / "connected").write_text(str(connected[0]))
            first = False
        if not alternate:
            await stop.wait()
        else:
            began = time.time()
            await pause(alternate)
            spans.append((began, time.time()))
            changing.append((opening, began))  # the handshakes
        closing = time.time()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if alternate:
            changing.append((closing, time.time()))
            await pause(alternate)
    out.write_text(json.dumps({"received": received, "spans": spans, "changing": changing}))


# --- the server and runtime (this process) -------------------------------------------------------


class _CommitClock:
    """Wall time of the commit of each new events/trades/equity_snapshots row written in this process."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.orm import Session

        self.at: dict[tuple[str, int], float] = {}
        self.pending: dict[int, list[tuple[str, int]]] = {}
        event.listen(Session, "after_flush", self._flushed)
        event.listen(Session, "after_commit", self._committed)

    def _flushed(self, session, _context) -> None:  # type: ignore[no-untyped-def]
        rows = [
            (type(o).__tablename__, o.id) for o in session.new if type(o).__tablename__ in TABLES.values()
        ]
        if rows:
            self.pending.setdefault(id(session), []).extend(rows)

    def _committed(self, session) -> None:  # type: ignore[no-untyped-def]
        now = time.time()
        for key in self.pending.pop(id(session), ()):
            self.at[key] = now


def _stream_load(root: Path, clients: int, results: dict, batch: bool, alternate: float = 0.0):  # type: ignore[no-untyped-def]
    """bench/live.py's ``during`` hook: the API on this loop, ``clients`` sockets in another process."""

    async def start(runtime, factory):  # type: ignore[no-untyped-def]
        if alternate:
            from live_sentiment import _time_latencies

            results["timed"] = _time_latencies(runtime)
        import uvicorn

        from engine.web.api.context import WebContext
        from engine.web.app import create_api
        from engine.web.auth.crypto import load_secret_box
        from engine.web.auth.tokens import TokenKeys

        token = results.pop("token")
        clock = _CommitClock()
        ctx = WebContext(sessions=factory, keys=TokenKeys.load_or_create(root), box=load_secret_box(root))
        port = _free_port()
        config = uvicorn.Config(
            create_api(ctx), host="127.0.0.1", port=port, log_level="warning", ws="websockets"
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        out = root / "received.json"
        client = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--client",
                str(port),
                token,
                str(clients),
                str(out),
                str(int(batch)),
                str(alternate),
            ],
            stdout=subprocess.DEVNULL,
        )
        marker = root / "connected"
        while not marker.exists() and client.poll() is None:
            await asyncio.sleep(0.1)
        results["connected"] = int(marker.read_text()) if marker.exists() else 0
        results["cpu0"] = time.process_time()

        async def stop() -> None:
            results["cpu"] = time.process_time() - results["cpu0"]
            await asyncio.sleep(1.5)  # the last rows reach the sockets
            client.send_signal(signal.SIGTERM)
            await asyncio.to_thread(client.wait, 60)
            server.should_exit = True
            await serving
            written = json.loads(out.read_text()) if out.exists() else {}
            received = written.get("received", [])
            # The client's wall-clock spans on this process's perf_counter clock (the latencies' clock).
            offset = time.time() - time.perf_counter()
            results["active"] = [(a - offset, b - offset) for a, b in written.get("spans", [])]
            results["excluded"] = [(a - offset, b - offset) for a, b in written.get("changing", [])]
            results["latency"] = [
                (t - clock.at[(TABLES[path], row)]) * 1000
                for path, row, t in received
                if (TABLES[path], row) in clock.at
            ]
            results["deliveries"] = len(received)
            results["rows"] = {table: sum(1 for k in clock.at if k[0] == table) for table in TABLES.values()}
            results["tails"] = {name: tail.queries for name, tail in ctx.live_tails.items()}

        return stop

    return start


def _plain_load(results: dict):  # type: ignore[no-untyped-def]
    async def start(runtime, factory):  # type: ignore[no-untyped-def]
        results["cpu0"] = time.process_time()

        async def stop() -> None:
            results["cpu"] = time.process_time() - results["cpu0"]

        return stop

    return start


def _run(
    bots: int,
    candles: int,
    history: int,
    interval: float,
    clients: int,
    batch: bool = True,
    alternate: float = 0.0,
) -> tuple[np.ndarray, dict]:
    from live import _bench, _workspace  # bench/live.py

    root = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    results: dict = {}
    try:
        replay_from = _workspace(root, bots, candles, history)
        if clients:
            from live_trades import _setup  # a viewer with 2FA and an open session (and a bot row)

            results["token"] = asyncio.run(_setup(root))
            during = _stream_load(root, clients, results, batch, alternate)
        else:
            during = _plain_load(results)
        print(f"--- {'with ' + str(clients) + ' sockets' if clients else 'no sockets'} ---", flush=True)
        orders = asyncio.run(_bench(root, replay_from, bots, interval=interval, during=during))
        return orders, results
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, token, count, out, batch, alternate = sys.argv[2:8]
        asyncio.run(_clients(int(port), token, int(count), Path(out), batch == "1", float(alternate)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--candles", type=int, default=30, help="1m candles replayed after the history")
    parser.add_argument("--history", type=int, default=600)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between replayed candle closes")
    parser.add_argument(
        "--per-row",
        action="store_true",
        help="also run the sockets without ?batch=true (one message per row) for comparison",
    )
    parser.add_argument(
        "--alternate",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="one run, the sockets all open for SECONDS then all closed as long, again and again: closes "
        "with the sockets open beside closes without, in the same run",
    )
    args = parser.parse_args()
    os.environ.setdefault("ENGINE_LOG_LEVEL", "WARNING")
    if args.alternate:
        from live_sentiment import _split_by_rounds

        orders, results = _run(
            args.bots, args.candles, args.history, args.interval, args.clients, alternate=args.alternate
        )
        print(f"sockets connected {results.get('connected')}; {results.get('deliveries', 0):,} deliveries")
        _split_by_rounds(
            {f"{args.clients} sockets, {args.alternate:g} s open / closed": results}, "open sockets"
        )
        return
    plain, base = _run(args.bots, args.candles, args.history, args.interval, 0)
    runs = [("batch", *_run(args.bots, args.candles, args.history, args.interval, args.clients))]
    if args.per_row:
        runs.append(
            ("per row", *_run(args.bots, args.candles, args.history, args.interval, args.clients, False))
        )

    def p(values: np.ndarray | list[float], q: float) -> float:
        return float(np.percentile(values, q)) if len(values) else float("nan")

    print()
    print(
        f"{args.bots} bots x 3 pairs, {args.candles} 1m candles one every {args.interval:g} s; runtime and API in "
        f"one process; {args.clients} viewer sockets (batch: ?batch=true, a message per read; per row: one per row)"
    )
    print(f"{'':40}{'no sockets':>14}" + "".join(f"{name:>14}" for name, *_ in runs))
    print(
        f"{'candle close -> order p50 (ms)':40}{p(plain, 50):14.2f}"
        + "".join(f"{p(o, 50):14.2f}" for _, o, _ in runs)
    )
    print(
        f"{'candle close -> order p99 (ms)':40}{p(plain, 99):14.2f}"
        + "".join(f"{p(o, 99):14.2f}" for _, o, _ in runs)
    )
    print(
        f"{'process CPU over the replay (s)':40}{base['cpu']:14.1f}"
        + "".join(f"{r['cpu']:14.1f}" for *_, r in runs)
    )
    for label, q in (
        ("delivery, commit -> client p50 (ms)", 50),
        ("delivery, commit -> client p99 (ms)", 99),
    ):
        print(f"{label:40}{'-':>14}" + "".join(f"{p(r.get('latency', []), q):14.1f}" for *_, r in runs))
    for name, orders, r in runs:
        print(
            f"{name}: sockets connected {r.get('connected')}; rows committed {r.get('rows')}; "
            f"{r.get('deliveries', 0):,} deliveries; reads per tail {r.get('tails')}; "
            f"p99 moved by {p(orders, 99) - p(plain, 99):+.2f} ms (aim: under 1 ms)"
        )


if __name__ == "__main__":
    main()
