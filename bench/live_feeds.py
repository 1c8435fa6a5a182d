"""Live runtime with feeds: candle close -> order p99 while every feed source refreshes, beside the same
run without refreshing, in one invocation.

    .venv/bin/python bench/live_feeds.py                  # 100 bots x 3 pairs, 40 1m candles, one every 2 s
    .venv/bin/python bench/live_feeds.py --bots 20 --candles 20

Both runs use bench/live.py's workspace with the bots' entry rule extended to read five feeds
(``fear_greed.value`` and four generic HTTP JSON feeds), so every candle's signals go through the as-of
join. Generated Fear & Greed history is in the store. In the second run a local HTTP server on
127.0.0.1 serves the five feeds and the scheduler refreshes each of them every second (60x a
realistic schedule; 200 items an answer for the JSON feeds), writing through the runtime's SQLite
write lock: the refreshes compete with the candles for the one event loop and the database.
Target (issue 11): the p99 moves by less than 1 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

FEEDS = ("fear_greed", "load1", "load2", "load3", "load4")
START = 1_704_067_200  # 2024-01-01, the replay's day


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        if self.path.startswith("/fng/"):
            rows = [{"value": str(40 + i % 20), "timestamp": str(START - i * 86_400)} for i in range(5)]
            body = {"name": "Fear and Greed Index", "data": rows, "metadata": {"error": None}}
        else:
            body = {"data": [{"t": START - 60 * i, "v": float(i)} for i in range(200)]}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _project(root: Path, url: str) -> None:
    strategy = root / "strategies" / "ema_rsi.yaml"
    reads = " and ".join(f"{name}.value > -1000000" for name in FEEDS)
    text = re.sub(
        r"(\n  long: crosses_above\(fast_ma, slow_ma\) and momentum < rsi_max)",
        rf"\1 and {reads}",
        strategy.read_text(),
    )
    strategy.write_text(text)
    lines = [
        "services:",
        f"  fear_greed: {{base_url: '{url}'}}",
        "feeds:",
        "  fear_greed: {source: fear_greed, refresh: 1s}",
    ]
    for name in FEEDS[1:]:
        lines.append(
            f"  {name}: {{source: http_json, url: '{url}/{name}', items: data, time: t, values: {{value: v}}, "
            f"refresh: 1s, max_age: 30d}}"
        )
    (root / "feeds.yaml").write_text("\n".join(lines) + "\n")


def _store_history(root: Path) -> None:
    from engine.feeds.synth import store_generated_feeds
    from engine.store import upgrade

    url = f"sqlite:///{root / 'engine.db'}"
    upgrade(url)
    store_generated_feeds("2023-12-20", "2024-01-03", url=url)
    # What the JSON feeds serve, stored beforehand: both runs read the same values; the refreshing run
    # re-fetches them (nothing new to store) and records source health on every refresh.
    from engine.feeds.observations import NS_PER_SECOND, Observation
    from engine.feeds.store import write_observations
    from engine.store.db import run_with_session

    rows = [
        Observation(
            f"{name}.value",
            (START - 60 * i) * NS_PER_SECOND,
            (START - 60 * i) * NS_PER_SECOND,
            float(i),
            "http_json",
        )
        for name in FEEDS[1:]
        for i in range(200)
    ]

    async def write(session) -> int:
        return await write_observations(session, rows)

    asyncio.run(run_with_session(write, url))


def _refreshing(url_holder: list[str], counts: list[int]):
    async def start(runtime, factory):
        from engine.config._feeds import load_feeds
        from engine.feeds.service import FeedService
        from engine.runtime.feed_refresh import FeedScheduler

        root = Path(runtime.config.bots_dir).parent
        service = FeedService(load_feeds(root), factory, root=root, write_lock=runtime._write_lock)
        scheduler = FeedScheduler(service, runtime.feed_reader, tick=0.1)
        scheduler.follow("bench", {name: set() for name in FEEDS})
        task = asyncio.create_task(scheduler.run())

        async def stop() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            counts.append(scheduler.refreshes)
            await service.aclose()

        return stop

    return start


def main() -> None:
    from live import _bench, _workspace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--candles", type=int, default=40)
    parser.add_argument("--history", type=int, default=600)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    results: dict[str, np.ndarray] = {}
    refreshes: list[int] = []
    for label, during in (
        ("feeds read, not refreshed", None),
        ("all 5 feeds refreshing every 1 s", _refreshing([url], refreshes)),
    ):
        root = Path(tempfile.mkdtemp(prefix="bench-live-feeds-"))
        try:
            replay_from = _workspace(root, args.bots, args.candles, args.history)
            _project(root, url)
            _store_history(root)
            print(f"\n=== {label} ===")
            results[label] = asyncio.run(
                _bench(root, replay_from, args.bots, interval=args.interval, during=during)
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)
    server.shutdown()
    print("\ncandle close -> order intents committed and sent, bot candles that decided orders:")
    for label, orders in results.items():
        if len(orders):
            print(
                f"  {label:<36} n={len(orders):>4}  p50 {np.percentile(orders, 50):6.1f} ms  p99 {np.percentile(orders, 99):6.1f} ms"
            )
    if refreshes:
        print(f"  feed refreshes during the second run: {refreshes[0]}")
    a, b = (results[k] for k in results)
    if len(a) and len(b):
        print(f"  p99 moved by {np.percentile(b, 99) - np.percentile(a, 99):+.1f} ms (target: under 1 ms)")


if __name__ == "__main__":
    main()
