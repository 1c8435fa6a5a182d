"""Live runtime benchmark: many bots on replayed 1m candles, through the whole live path.

    .venv/bin/python bench/live.py                       # 100 bots x 3 pairs, 40 1m candles, one every 2 s
    .venv/bin/python bench/live.py --no-gc-freeze        # with the full garbage collections' stalls
    .venv/bin/python bench/live.py --no-intent-first     # a candle's writes in one transaction, sent after
    .venv/bin/python bench/live.py --bots 10 --candles 120 --interval 0   # as fast as the bots go
    .venv/bin/python bench/live.py --breakdown           # where a round's time goes, per round with orders
    .venv/bin/python bench/live.py --no-orders-first     # every bot takes the close in file order

Every bot runs the example EMA/RSI strategy (switched to 1m) on 3 of 12 synthetic BTC pairs, with the
paper fills, the candle's order intents committed first and its bookkeeping (fills, positions, trades,
equity, checkpoint) after them, group commit and the shared portfolio risk manager. Candle windows are
seeded with history first, so each signal computation sees a full window as in steady state. The
candles are paced (``--interval`` seconds apart, live: 60) so a round ends before the next close.

Printed: candles processed per second (bot-pair candles), decision compute, p50/p99 decision latency
(a bot taking a candle to all its writes committed), the end-to-end delay from the feed handing the
candle out, the issue's figure (candle close -> order intents committed and sent, for the bot candles
that decided orders, with how many), SQL statements per bot candle and the checkpoint's size, resident
memory per bot, and the time from saving the strategy file to every bot using it having the new
version validated and staged (watchfiles -> validate what changed -> swap), and the same for one
edited bot file.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [
    f"{base}/BTC"
    for base in ("ETH", "LTC", "XRP", "ADA", "DOT", "LINK", "XLM", "TRX", "ZEC", "DASH", "ETC", "XMR")
]


class _Breakdown:
    """Per candle round, in ms after the feed handed the batch out: when the last bot had decided (its
    first write handed to the committer), and when the round's order intents transaction started and
    ended. Wraps the runtime's methods for the measurement only."""

    def __init__(self) -> None:
        from engine.runtime import commit, orchestrator

        self.rounds: list[dict] = []
        self.t0 = 0.0
        dispatch = orchestrator.Runtime.dispatch
        run = commit.Committer.run
        flush = commit.Committer._flush_urgent
        me = self

        async def timed_dispatch(runtime, batch):  # type: ignore[no-untyped-def]
            me.t0 = time.perf_counter()
            me.rounds.append({"handed": [], "urgent": None})
            await dispatch(runtime, batch)

        async def timed_run(committer, job, *, urgent=False):  # type: ignore[no-untyped-def]
            if me.rounds:
                me.rounds[-1]["handed"].append(time.perf_counter() - me.t0)
            return await run(committer, job, urgent=urgent)

        async def timed_flush(committer, batch):  # type: ignore[no-untyped-def]
            start = time.perf_counter() - me.t0
            current = me.rounds[-1] if me.rounds else {}

            def written(_future) -> None:  # type: ignore[no-untyped-def]
                # The callers' futures are resolved right after the commit (before the session closes).
                if current.get("urgent") is None:
                    current["urgent"] = (start, time.perf_counter() - me.t0, len(batch))

            batch[0][1].add_done_callback(written)
            await flush(committer, batch)

        orchestrator.Runtime.dispatch = timed_dispatch  # type: ignore[method-assign]
        commit.Committer.run = timed_run  # type: ignore[method-assign]
        commit.Committer._flush_urgent = timed_flush  # type: ignore[method-assign]

    def report(self, bots: int) -> None:
        rows = [r for r in self.rounds if r["urgent"] is not None and len(r["handed"]) >= bots]
        if not rows:
            print("breakdown: no round decided orders")
            return
        decided = np.array([sorted(r["handed"])[bots - 1] for r in rows]) * 1000
        start = np.array([r["urgent"][0] for r in rows]) * 1000
        end = np.array([r["urgent"][1] for r in rows]) * 1000
        jobs = np.array([r["urgent"][2] for r in rows])
        print(
            f"breakdown of the {len(rows)} rounds that decided orders (ms after the batch was handed out, "
            f"median / max): all {bots} bots decided {np.median(decided):.1f} / {decided.max():.1f}; "
            f"intent transaction starts {np.median(start):.1f} / {start.max():.1f}, ends "
            f"{np.median(end):.1f} / {end.max():.1f} ({np.median(end - start):.1f} ms for a median "
            f"{np.median(jobs):.0f} bots' intents)"
        )


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _workspace(root: Path, bots: int, minutes: int, history: int) -> pd.Timestamp:
    from engine.data.naming import candle_filename
    from engine.data.synth import synth_candles

    (root / "bots").mkdir()
    (root / "strategies").mkdir()
    (root / "data").mkdir()
    strategy = (ROOT / "strategies" / "ema_rsi.yaml").read_text().replace("timeframe: 5m", "timeframe: 1m")
    (root / "strategies" / "ema_rsi.yaml").write_text(strategy)
    template = (ROOT / "bots" / "eth_btc_trend.yaml").read_text()
    for k in range(bots):
        pairs = [PAIRS[(k + j) % len(PAIRS)] for j in range(3)]
        text = template.replace("bot: eth-btc-trend", f"bot: bench-{k:03d}")
        text = re.sub(r"^pairs: .*$", f"pairs: [{', '.join(pairs)}]", text, flags=re.M)
        (root / "bots" / f"bench_{k:03d}.yaml").write_text(text)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    end = start + pd.Timedelta(minutes=history + minutes)
    for n, pair in enumerate(PAIRS):
        synth_candles(pair, "1m", start, end, seed=n).to_parquet(root / "data" / candle_filename(pair, "1m"))
    return start + pd.Timedelta(minutes=history)


async def _bench(
    root: Path,
    replay_from: pd.Timestamp,
    bots: int,
    group_commit: bool = True,
    intent_first: bool = True,
    interval: float = 0.0,
    gc_freeze: bool = False,
    breakdown: bool = False,
    orders_first: bool = True,
    during=None,  # async (runtime, factory) -> async stop(): extra load while the bots run (bench/live_feeds.py)
) -> np.ndarray:
    from sqlalchemy import event

    from engine.data import DataDirectory
    from engine.runtime import ReplayFeed, Runtime, RuntimeConfig, load_bots
    from engine.runtime.bot import BotRunner
    from engine.runtime.checkpoint import dump_state
    from engine.store import create_engine_for, session_factory, upgrade_async

    BotRunner.intent_first = intent_first
    timing = _Breakdown() if breakdown else None
    engine = create_engine_for(f"sqlite:///{root / 'engine.db'}")
    await upgrade_async(engine)
    factory = session_factory(engine)
    statements = [0]

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(*_args) -> None:  # type: ignore[no-untyped-def]
        statements[0] += 1

    # interval > 0: one 1m candle every ``interval`` seconds (as live, where a round has a minute to
    # finish); 0: as fast as the bots take them (later candles then queue behind earlier rounds).
    feed = ReplayFeed(
        DataDirectory(root / "data"), start=replay_from, speed=60.0 / interval if interval else 0.0
    )
    config = RuntimeConfig(
        bots_dir=root / "bots",
        strategies_dir=root / "strategies",
        watch=True,
        queue_size=64,
        orders_first=orders_first,
    )
    runtime = Runtime(config, factory, feed)

    t0 = time.perf_counter()
    loaded = load_bots(root / "bots")
    t_load = time.perf_counter() - t0
    rss_before = _rss_mib()
    t0 = time.perf_counter()
    await runtime.start(loaded)
    t_start = time.perf_counter() - t0
    runners = [runtime.runner(name) for name in sorted(runtime.slots)]
    if not gc_freeze:
        import gc

        # Runtime.start moves everything alive after start-up out of the collector's view (full
        # collections otherwise stall the loop for ~100+ ms every few candles); this undoes it.
        gc.unfreeze()
    # The runtime's shared Committer groups the writes of every bot ready at the same moment (what
    # engine run does); --no-group-commit gives each bot a transaction of its own, queued on the lock.
    committer = runtime.committer if group_commit else None
    if not group_commit:
        from engine.runtime.commit import Committer

        for runner in runners:
            runner.committer = Committer(factory, group=False, lock=runner.write_lock)

    stop_extra = await during(runtime, factory) if during is not None else None
    t0 = time.perf_counter()
    statements[0] = 0
    await runtime.pump()
    await runtime.settle()
    elapsed = time.perf_counter() - t0
    n_statements = statements[0]
    orders = np.array([x for r in runners for x in r.order_latencies]) * 1000
    checkpoint_bytes = np.mean([len(dump_state(r.trader.state)) for r in runners])
    t_dump = time.perf_counter()
    for r in runners:
        dump_state(r.trader.state)
    t_dump = (time.perf_counter() - t_dump) / len(runners) * 1000
    pair_candles = sum(r.view.candles * len(r.pairs) for r in runners)
    compute = np.array([x for r in runners for x in r.compute]) * 1000
    latencies = np.array([x for r in runners for x in r.latencies]) * 1000
    delays = np.array([x for r in runners for x in r.delays]) * 1000
    rss_after = _rss_mib()

    # Reload: save the strategy, wait until every bot has the new version staged.
    strategy = root / "strategies" / "ema_rsi.yaml"
    await asyncio.sleep(0.5)  # the watcher is up
    t0 = time.perf_counter()
    strategy.write_text(strategy.read_text().replace("rsi_max: {default: 70", "rsi_max: {default: 71"))
    while not all(r.pending_reload for r in runners):
        if time.perf_counter() - t0 > 120:
            break
        await asyncio.sleep(0.01)
    t_reload = time.perf_counter() - t0

    # One bot file edited: only that file is validated again, the other bots are reused as they are.
    target = runners[0]
    previous = target._next
    bot_file = root / "bots" / "bench_000.yaml"
    t0 = time.perf_counter()
    bot_file.write_text(bot_file.read_text().replace("max_per_trade: 10%", "max_per_trade: 11%"))
    while target._next is previous:
        if time.perf_counter() - t0 > 120:
            break
        await asyncio.sleep(0.01)
    t_one = time.perf_counter() - t0
    if stop_extra is not None:
        await stop_extra()
    await runtime.stop()
    await engine.dispose()

    print(
        f"bots: {bots} x 3 pairs, 1m candles, {runners[0].view.candles} replayed per bot, "
        f"one every {interval:g} s" + ("" if gc_freeze else " (gc NOT frozen after start)")
    )
    print(f"load + compile all bot files: {t_load:.2f} s; start (register, seed windows): {t_start:.2f} s")
    print(
        f"bot-pair candles processed: {pair_candles} in {elapsed:.2f} s = {pair_candles / elapsed:,.0f} per second"
    )
    print(
        f"decision compute (signals on 3 pairs + kernel, no awaits), per bot candle: "
        f"p50 {np.percentile(compute, 50):.1f} ms, p99 {np.percentile(compute, 99):.1f} ms"
    )
    print(
        f"decision latency (bot takes the candle -> orders committed, other bots run during its commit), "
        f"per bot candle: "
        f"p50 {np.percentile(latencies, 50):.1f} ms, p99 {np.percentile(latencies, 99):.1f} ms"
    )
    print(
        f"end-to-end (feed hands out the candle -> committed; includes waiting behind the other bots on "
        f"the one event loop): p50 {np.percentile(delays, 50):.0f} ms, p99 {np.percentile(delays, 99):.0f} ms"
    )
    if len(orders):
        print(
            f"candle close -> order intents committed and sent (marked sent: paper), bot candles that decided "
            f"orders: {len(orders)}, p50 {np.percentile(orders, 50):.1f} ms, p99 {np.percentile(orders, 99):.1f} ms "
            f"(intent first: {'on' if intent_first else 'off'}, orders first: {'on' if orders_first else 'off'})"
        )
    else:
        print("candle close -> order sent: no bot decided an order (replay more candles)")
    bot_candles = sum(r.view.candles for r in runners)
    print(
        f"bookkeeping: {n_statements / max(bot_candles, 1):.1f} SQL statements per bot candle; checkpoint "
        f"{checkpoint_bytes / 1024:.1f} KiB of text, dump_state {t_dump:.2f} ms"
    )
    shared = runtime.shared
    print(f"signal computations shared between bots: {shared.hits} reused, {shared.misses} computed")
    if committer is not None:
        print(
            f"group commit: {committer.jobs} bot candle writes in {committer.transactions} transactions "
            f"({committer.jobs / max(committer.transactions, 1):.1f} per transaction; "
            f"{committer.urgent_transactions} of them order intents only)"
        )
    else:
        print("group commit: off (one transaction per bot and candle)")
    print(
        f"memory: {rss_before:.0f} MiB before bots, {rss_after:.0f} MiB after; {(rss_after - rss_before) / bots:.2f} MiB per bot"
    )
    print(f"reload (save strategy -> all {bots} bots staged with the new version): {t_reload:.2f} s")
    print(f"reload (save one bot file -> that bot staged, {bots - 1} others unchanged): {t_one:.2f} s")
    print("  (both include the file watcher's 200 ms debounce)")
    if timing is not None:
        timing.report(bots)
    return orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument(
        "--candles", type=int, default=40, help="1m candles replayed after the warm-up history"
    )
    parser.add_argument(
        "--history", type=int, default=600, help="1m candles of history seeded before the replay"
    )
    parser.add_argument(
        "--group-commit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one shared transaction for the bots whose candle is ready (default) or one per bot",
    )
    parser.add_argument(
        "--intent-first",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="commit (and send) a candle's order intents before its other writes (default), or all together",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        help="seconds between replayed candle closes (live: 60); 0 hands them out as fast as the bots go",
    )
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the runtime's gc.freeze() after start-up (--no-gc-freeze: undo it, to compare)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also print, per round that decided orders, when every bot had decided and the intent transaction",
    )
    parser.add_argument(
        "--orders-first",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hand a close first to the bots whose signals may decide an order (default), or to all in file order",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-live-"))
    try:
        replay_from = _workspace(root, args.bots, args.candles, args.history)
        asyncio.run(
            _bench(
                root,
                replay_from,
                args.bots,
                args.group_commit,
                args.intent_first,
                args.interval,
                args.gc_freeze,
                args.breakdown,
                args.orders_first,
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
