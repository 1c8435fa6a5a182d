"""Live runtime with news: candle close -> order p99 while news is fetched, scored and stored, beside the
same run without ingestion, in one invocation.

    .venv/bin/python bench/live_sentiment.py                  # 100 bots x 3 pairs, 40 1m candles, one every 2 s
    .venv/bin/python bench/live_sentiment.py --bots 20 --candles 20
    .venv/bin/python bench/live_sentiment.py --items 10 --every 5   # a calmer (still 10x realistic) flow
    .venv/bin/python bench/live_sentiment.py --in-loop        # also the old way: news on the runtime's loop
    .venv/bin/python bench/live_sentiment.py --ingest-first   # the ingesting runs first

Every run uses bench/live.py's workspace with the bots' entry rule extended to read news
(``sentiment.all.score`` and ``news.all.count_1h``), so every candle's signals go through the news
aggregates; generated news history is in the store. In the ingesting runs a local RSS server on
127.0.0.1 serves 100 new items per request and the news is fetched again one second after each round
ends (about 10 new items a second, some 100x the flow of the ten default outlets), parsed, deduplicated,
tagged, scored and stored, extending the bots' shared reader: as ``engine run`` does, in a process of
its own that takes the runtime's SQLite write lock for its writes (engine/sentiment/news_process.py),
and with ``--in-loop`` as before that, on the runtime's loop and worker threads.
A short discarded run comes first: the first run of a process was the slower one, whichever it was.
The runtime's gc.freeze() after start-up is kept, as in ``engine run`` (without it, full collections
stall the loop for 100+ ms every few candles: ``--no-gc-freeze`` shows that).
Target (issue 12): the p99 moves by at most 1 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PER_REQUEST = 100  # default; --items


def _handler(counter: list[int], per_request: int):
    from engine.sentiment.evaluation import load_labelled

    titles = [text for _, text in load_labelled()]

    class _Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            start = counter[0]
            counter[0] += per_request
            now = format_datetime(datetime.now(UTC), usegmt=True)
            items = "".join(
                f"<item><title>{titles[i % len(titles)]} ({i})</title><link>https://bench.invalid/{i}</link>"
                f"<description>Story {i}.</description><pubDate>{now}</pubDate></item>"
                for i in range(start, start + per_request)
            )
            data = (
                '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>bench</title>'
                f"<language>en</language>{items}</channel></rss>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return _Handler


def _project(root: Path) -> None:
    strategy = root / "strategies" / "ema_rsi.yaml"
    text = re.sub(
        r"(\n  long: crosses_above\(fast_ma, slow_ma\) and momentum < rsi_max)",
        r"\1 and sentiment.all.score > -2 and news.all.count_1h >= 0",
        strategy.read_text(),
    )
    strategy.write_text(text)


def _store_history(root: Path) -> None:
    from engine.sentiment.synth import store_generated_news

    store_generated_news("2023-12-25", "2024-01-02", url=f"sqlite:///{root / 'engine.db'}", coin="btc")


class _TimedList(list):
    """A bot's order latencies, each with the moment it was recorded (to tell which closes met ingestion)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def append(self, value: float) -> None:
        super().append(value)
        self.at.append(time.perf_counter())


def _time_latencies(runtime) -> dict[str, _TimedList]:  # type: ignore[no-untyped-def]
    """Every bot's order latencies from now on timed (for :func:`_split_by_rounds`), by bot name."""
    timed = {}
    for name in runtime.slots:
        timed[name] = runtime.runner(name).order_latencies = _TimedList()
    return timed


def _ingesting(
    url: str,
    stats: dict,
    every: float,
    root: Path,
    own_process: bool,
    alternate: float = 0.0,
):
    """``alternate`` > 0: ingestion runs for that many seconds, then pauses as long, and so on; the
    bots' order latencies are timed so that closes during and between the rounds can be told apart."""

    async def start(runtime, factory):
        from engine.sentiment.config import SentimentConfig, SourceConfig
        from engine.sentiment.news_process import NewsProcess, shareable_url
        from engine.sentiment.pipeline import NewsPipeline

        if own_process:  # as engine run does: the child reads the project's sentiment.yaml
            (root / "sentiment.yaml").write_text(
                f"default_feeds: false\nsources:\n  - kind: rss\n    name: bench\n    url: {url}\n"
            )
            pipeline = NewsProcess(
                root,
                shareable_url(factory) or "",
                write_lock=runtime._write_lock,
                on_observations=runtime.feed_reader.extend,
                orders_written=runtime.committer.urgent_written,
            )
        else:
            config = SentimentConfig(
                default_feeds=False, sources=(SourceConfig(kind="rss", name="bench", url=url),)
            )
            pipeline = NewsPipeline(
                config, factory, write_lock=runtime._write_lock, on_observations=runtime.feed_reader.extend
            )

        if own_process:
            await pipeline.ingest()  # the process is up (and the feed's first page stored) before the candles
            stats.clear()
        if alternate:
            stats["timed"] = _time_latencies(runtime)
            stats["active"] = []

        async def loop() -> None:
            started = time.perf_counter()
            block = started
            while True:
                if alternate and time.perf_counter() - block >= alternate:
                    await asyncio.sleep(alternate)  # the idle block
                    block = time.perf_counter()
                begun = time.perf_counter()
                report = await pipeline.ingest()
                if alternate:
                    stats["active"].append((begun, time.perf_counter()))
                stats["rounds"] = stats.get("rounds", 0) + 1
                stats["items"] = stats.get("items", 0) + report.added
                stats["unchanged"] = stats.get("unchanged", 0) + (report.added == 0)
                stats["seconds"] = time.perf_counter() - started
                await asyncio.sleep(every)

        task = asyncio.create_task(loop())

        async def stop() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await pipeline.aclose()

        return stop

    return start


def _split_by_rounds(
    stats: dict, what: str = "an ingestion round", target: str = " (target: p99 at most 1 ms)"
) -> None:
    """The alternating run's closes: those whose close -> order span overlapped ``what`` (for news: the
    news process fetching, scoring, writing) beside those that did not, from the same run."""
    for label, numbers in stats.items():
        timed, active = numbers.get("timed"), numbers.get("active")
        if not timed or not active:
            continue
        rounds = np.array(active)
        # Spans in neither state (bench/live_stream.py: sockets opening or closing) count for neither.
        excluded = np.array(numbers.get("excluded") or [(0.0, 0.0)])
        met, apart = [], []
        slow: list[tuple[float, float, float]] = []  # (ms, seconds into the round it met, round length)
        for latencies in timed.values():
            for latency, at in zip(latencies, latencies.at, strict=True):
                begin = at - latency
                if np.any((excluded[:, 0] < at) & (excluded[:, 1] > begin)):
                    continue
                hits = np.flatnonzero((rounds[:, 0] < at) & (rounds[:, 1] > begin))
                (met if len(hits) else apart).append(latency * 1000)
                if len(hits):
                    r = rounds[hits[0]]
                    slow.append((latency * 1000, begin - r[0], r[1] - r[0]))
        print(f"\n{label}: closes by whether {what} ran during them")
        for name, values in ((f"during {what}", met), ("without", apart)):
            if values:
                print(
                    f"  {name:<24} n={len(values):>4}  p50 {np.percentile(values, 50):6.1f} ms  "
                    f"p99 {np.percentile(values, 99):6.1f} ms"
                )
        if slow:
            worst = sorted(slow, reverse=True)[:5]
            print(
                "  slowest closes during one: "
                + ", ".join(f"{ms:.0f} ms at {into:.1f} s of {length:.1f} s" for ms, into, length in worst)
            )
        if met and apart:
            print(
                f"  shift p50 {np.percentile(met, 50) - np.percentile(apart, 50):+.1f} ms, "
                f"p99 {np.percentile(met, 99) - np.percentile(apart, 99):+.1f} ms{target}"
            )


def main() -> None:
    from live import _bench, _workspace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--candles", type=int, default=40)
    parser.add_argument("--history", type=int, default=600)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--items", type=int, default=PER_REQUEST, help="new items per fetch")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between fetches")
    parser.add_argument("--ingest-first", action="store_true", help="run the ingesting runs first")
    parser.add_argument(
        "--alternate",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="one run, ingestion (own process) on and off in blocks of SECONDS: closes that met a round "
        "beside closes that did not, in the same run",
    )
    parser.add_argument(
        "--in-loop",
        action="store_true",
        help="also ingest on the runtime's loop (before news had its own process)",
    )
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the runtime's gc.freeze() after start-up, as engine run does (--no-gc-freeze: undo it)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="candles of a discarded first run (0: none)")
    args = parser.parse_args()
    counter = [0]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(counter, args.items))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    results: dict[str, np.ndarray] = {}
    stats: dict[str, dict[str, int]] = {}
    ingesting = f"{args.items} items every {args.every:g} s"
    runs: list[tuple[str, bool | None]] = [
        ("news read, not ingested", None),
        (f"ingesting {ingesting}, own process", True),
    ]
    if args.in_loop:
        runs.append((f"ingesting {ingesting}, on the loop", False))
    if args.alternate:
        runs = [(f"ingesting {ingesting}, own process, {args.alternate:g} s on / off", True)]
        if args.in_loop:
            runs.append((f"ingesting {ingesting}, on the loop, {args.alternate:g} s on / off", False))
    if args.ingest_first:  # the order of the runs, to see whether it matters on this machine
        runs.reverse()
    # The first run in a process was slower whichever it was (caches, lazy imports): a short discarded
    # run comes first so that neither measured run pays for it.
    warmup = [("warm-up, discarded", None)] if args.warmup > 0 else []
    for label, own_process in warmup + runs:
        root = Path(tempfile.mkdtemp(prefix="bench-live-news-"))
        candles = args.warmup if label.startswith("warm-up") else args.candles
        try:
            replay_from = _workspace(root, args.bots, candles, args.history)
            _project(root)
            _store_history(root)
            during = None
            if own_process is not None:
                during = _ingesting(
                    url, stats.setdefault(label, {}), args.every, root, own_process, args.alternate
                )
            print(f"\n=== {label} ===")
            results[label] = asyncio.run(
                _bench(
                    root,
                    replay_from,
                    args.bots,
                    interval=args.interval,
                    during=during,
                    gc_freeze=args.gc_freeze,
                )
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)
    server.shutdown()
    print("\ncandle close -> order intents committed and sent, bot candles that decided orders:")
    results.pop("warm-up, discarded", None)
    for label, orders in results.items():
        if len(orders):
            print(
                f"  {label:<46} n={len(orders):>4}  p50 {np.percentile(orders, 50):6.1f} ms  p99 {np.percentile(orders, 99):6.1f} ms"
            )
    if args.alternate:
        _split_by_rounds(stats)
    base = results.get("news read, not ingested", np.empty(0))
    for label, numbers in stats.items():
        seconds = numbers.get("seconds", 0.0) or 1.0
        print(
            f"  {label}: {numbers.get('rounds', 0)} fetches, {numbers.get('items', 0)} items stored, "
            f"{numbers.get('unchanged', 0)} fetches that stored nothing ({numbers.get('items', 0) / seconds:.1f} items/s "
            f"over {seconds:.0f} s)"
        )
        run = results.get(label, np.empty(0))
        if len(base) and len(run):
            p50 = np.percentile(run, 50) - np.percentile(base, 50)
            p99 = np.percentile(run, 99) - np.percentile(base, 99)
            print(f"    p50 moved by {p50:+.1f} ms, p99 by {p99:+.1f} ms (target: p99 at most 1 ms)")


if __name__ == "__main__":
    main()
