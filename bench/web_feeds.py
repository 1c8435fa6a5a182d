"""What the web app's feeds page (and ``GET /feeds/status``) costs per refresh on a large feed store.

    .venv/bin/python bench/web_feeds.py                  # 2 series x 1 year of 1-minute values (1.05 M rows)
    .venv/bin/python bench/web_feeds.py --rows 100000    # a quick look

Side by side, on one SQLite store: the full aggregate ``engine feeds status`` runs
(``engine.feeds.status.overview_in``), and the page's read (``engine.web.feed_lines.load_feed_status``)
the first time (a full read, kept), with nothing new since (the newest id only), and with an hour of
new 1-minute values for each series (the rows since the last read only). The page re-reads every
3 s for each open browser, so the last two are what it costs in steady state.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T0 = 1_704_067_200 * 1_000_000_000
MINUTE = 60 * 1_000_000_000
SERIES = ("btc.price", "eth.price")


def fill(db_path: Path, start: int, count: int) -> None:
    """Rows straight into the table (the store's own writer is far slower than what is measured)."""
    with sqlite3.connect(db_path) as db:
        for series in SERIES:
            db.executemany(
                "INSERT INTO feed_observations (series, event_time, available_at, value, source, fetched_at)"
                " VALUES (?, ?, ?, ?, 'coingecko', 0)",
                (
                    (series, T0 + i * MINUTE, T0 + (i + 1) * MINUTE, 100.0 + i % 97)
                    for i in range(start, start + count)
                ),
            )


async def main(rows: int, repeat: int) -> None:
    from engine.config._feeds import load_feeds
    from engine.feeds.sources.base import SOURCE_MODULES
    from engine.feeds.status import overview_in
    from engine.store import create_engine_for, session_factory, upgrade_async
    from engine.web.feed_lines import calls_limit, load_feed_status

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "bots").mkdir()
        engine = create_engine_for(f"sqlite:///{home / 'engine.db'}")
        await upgrade_async(engine)
        fill(home / "engine.db", 0, rows)
        sessions = session_factory(engine)
        loaded = load_feeds(home)

        async def timed(read) -> float:  # type: ignore[no-untyped-def]
            best = float("inf")
            for _ in range(repeat):
                async with sessions() as db:
                    start = time.perf_counter()
                    await read(db)
                    best = min(best, time.perf_counter() - start)
            return best

        for kind in SOURCE_MODULES:  # the sources' modules (their default limits) load once per process
            calls_limit(loaded, kind)
        full = await timed(lambda db: overview_in(db, loaded))
        async with sessions() as db:
            start = time.perf_counter()
            await load_feed_status(db, home / "bots")
            first = time.perf_counter() - start
        idle = await timed(lambda db: load_feed_status(db, home / "bots"))
        added = []
        for k in range(repeat):
            fill(home / "engine.db", rows + k * 60, 60)
            added.append(await timed_once(sessions, lambda db: load_feed_status(db, home / "bots")))
        await engine.dispose()
    total = rows * len(SERIES)
    print(f"feed store: {total:,} observations in {len(SERIES)} series (SQLite)")
    print(f"{'read':<58}{'seconds':>10}")
    print(f"{'engine feeds status aggregate (overview_in), every time':<58}{full:>10.4f}")
    print(f"{'page/API, first read (full, then kept)':<58}{first:>10.4f}")
    print(f"{'page/API, nothing new since the last read':<58}{idle:>10.4f}")
    print(f"{'page/API, 60 new values per series since the last read':<58}{min(added):>10.4f}")


async def timed_once(sessions, read) -> float:  # type: ignore[no-untyped-def]
    async with sessions() as db:
        start = time.perf_counter()
        await read(db)
        return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=525_600, help="values per series (default: a year of minutes)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.repeat))
