"""SIGKILL at any moment leaves the database consistent: committed rounds intact, the round in flight
absent, the killed engine's lease refusing a second engine until it expires."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store import (
    Event,
    Fill,
    LeaseHeldError,
    Order,
    OrderStatus,
    acquire_lease,
    create_engine_for,
    get_lease,
    list_open_positions,
    session_factory,
)

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[3]


def start_writer(url: str, owner: str, pause: float) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        [sys.executable, str(WRITER), url, owner, str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def read_until(proc: subprocess.Popen[str], predicate, timeout: float = 60.0) -> list[str]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"writer exited early ({proc.poll()}): {err[-2000:]}")
        lines.append(line.strip())
        if predicate(line.strip()):
            return lines
    raise AssertionError("writer too slow")


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def committed(lines: list[str]) -> list[int]:
    return [int(line.split()[1]) for line in lines if line.startswith("COMMITTED")]


async def check_consistent(factory: async_sessionmaker[AsyncSession], url: str) -> int:
    """Every stored round is whole; returns how many there are."""
    async with factory() as session:
        orders = (await session.execute(select(Order).order_by(Order.client_order_id))).scalars().all()
        fills = (await session.execute(select(Fill))).scalars().all()
        events = (await session.execute(select(Event))).scalars().all()
        positions = await list_open_positions(session)
        if url.startswith("sqlite"):
            assert (await session.execute(text("PRAGMA integrity_check"))).scalar() == "ok"
    n = len(orders)
    assert [o.client_order_id for o in orders] == [f"crash{i:05d}" for i in range(n)]
    for order in orders:
        mine = [f for f in fills if f.order_id == order.id]
        assert len(mine) == 3 and sum(f.amount for f in mine) == order.filled == Decimal("0.3")
        assert order.status == OrderStatus.FILLED
    assert len(fills) == 3 * n
    assert sorted(e.data["n"] for e in events) == list(range(n))  # type: ignore[index]
    if n:
        assert [p.amount for p in positions] == [Decimal("0.3") * n]
    return n


async def test_sigkill_mid_transaction_keeps_committed_and_drops_the_rest(db_url: str) -> None:
    engine = create_engine_for(db_url)
    factory = session_factory(engine)
    try:
        proc = start_writer(db_url, "engine-1", pause=0.2)
        try:
            lines = read_until(proc, lambda line: line == "MID 3")
        finally:
            kill(proc)
        assert committed(lines) == [0, 1, 2]
        # Round 3 was written (flushed to the database) but not committed: it must be absent.
        assert await check_consistent(factory, db_url) == 3

        # The killed engine's lease still stands: a second engine is refused until it expires...
        async with factory() as session:
            lease = await get_lease(session, "crash-test")
        assert lease is not None and lease.owner == "engine-1"
        with pytest.raises(LeaseHeldError):
            await acquire_lease(
                factory, "crash-test", "engine-2", now=lease.expires_at - timedelta(seconds=1)
            )
        # ... and then taken over.
        taken = await acquire_lease(factory, "crash-test", "engine-2", now=lease.expires_at)
        assert taken.epoch == lease.epoch + 1
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_sigkill_at_random_moments(db_url: str) -> None:
    """Kills land anywhere: between statements, inside COMMIT, during the fsync."""
    engine = create_engine_for(db_url)
    factory = session_factory(engine)
    rng = random.Random(20240101)
    total = 0
    try:
        for run in range(3):
            proc = start_writer(db_url, f"engine-{run}", pause=0.0)
            try:
                read_until(proc, lambda line: line == "READY")
                time.sleep(rng.uniform(0.05, 0.4))
            finally:
                kill(proc)
            stored = await check_consistent(factory, db_url)
            assert stored >= total
            total = stored
            # The next writer may only start once the dead one's lease has expired.
            async with factory() as session, session.begin():
                await session.execute(text("DELETE FROM engine_leases"))
        assert total > 0
        async with factory() as session:
            assert await session.scalar(select(func.count()).select_from(Order)) == total
    finally:
        await engine.dispose()
