"""PostgreSQL: a separate ``engine run``'s commits reaching the web server's tail, with LISTEN/NOTIFY
beside the 1 s tick alone, in one run (issue 15).

    source .ci/postgres && .venv/bin/python bench/live_notify.py          # 50 events, one every 100 ms

Another process writes events (each stamped with its commit's wall time); this process follows the
events table with the server's tail (``engine/web/live_tail.py``) and notes when each row reaches it.
Printed: delivery latency from commit to the tail (p50/p99), with the listener and with the tick only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from engine.store import EventCategory, record_event
    from engine.store.db import create_engine_for, session_factory

    async def main(url, count, every):
        engine = create_engine_for(url)
        factory = session_factory(engine)
        for i in range(count):
            async with factory() as db:
                async with db.begin():
                    await record_event(db, EventCategory.SYSTEM, "bench", "x", data={"i": i})
                print(i, time.time(), flush=True)  # just after the commit
            await asyncio.sleep(every)
        await engine.dispose()

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
    """
)


async def _measure(url: str, count: int, every: float, listen: bool) -> np.ndarray:
    from engine.store.db import create_engine_for, session_factory
    from engine.web import live_tail
    from engine.web.live_tail import EVENTS, StoreTail

    if not listen:
        live_tail._listen_for_other_processes = lambda _sessions: None  # the tick alone
    engine = create_engine_for(url)
    tail = StoreTail(session_factory(engine), EVENTS, interval=1.0)
    arrived: dict[int, float] = {}
    await tail.watch(lambda rows: arrived.update({r.data["i"]: time.time() for r in rows if r.data}))
    await asyncio.sleep(1.0)
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, url, str(count), str(every), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await writer.communicate()
    await asyncio.sleep(1.5)
    committed = {int(i): float(t) for i, t in (line.split() for line in out.decode().splitlines())}
    await tail.close()
    for listener in list(live_tail._LISTENERS.values()):
        await listener.close()
    await engine.dispose()
    return np.array([(arrived[i] - t) * 1000 for i, t in committed.items() if i in arrived])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--every", type=float, default=0.1)
    args = parser.parse_args()
    url = os.environ.get("ENGINE_TEST_POSTGRES_URL")
    if not url:
        sys.exit("set ENGINE_TEST_POSTGRES_URL (source .ci/postgres starts a throw-away server)")

    async def both() -> tuple[np.ndarray, np.ndarray]:
        from engine.store.db import create_engine_for, upgrade_async

        engine = create_engine_for(url)
        await upgrade_async(engine)
        await engine.dispose()
        listened = await _measure(url, args.events, args.every, listen=True)
        ticked = await _measure(url, args.events, args.every, listen=False)
        return listened, ticked

    listened, ticked = asyncio.run(both())
    print(
        f"{args.events} events from another process, one every {args.every * 1000:g} ms; commit -> server's tail"
    )
    for name, values in (("LISTEN/NOTIFY + 1 s tick", listened), ("1 s tick only", ticked)):
        print(
            f"{name:28} p50 {np.percentile(values, 50):7.1f} ms  p99 {np.percentile(values, 99):7.1f} ms  "
            f"({len(values)} of {args.events} rows)"
        )


if __name__ == "__main__":
    main()
