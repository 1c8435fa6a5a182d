from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from engine.store import (
    LeaseHeldError,
    LeaseLostError,
    account_lease_name,
    acquire_lease,
    get_lease,
    new_owner_id,
    release_lease,
    renew_lease,
    session_factory,
)

Factory = async_sessionmaker[AsyncSession]
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)
NAME = account_lease_name("binance", "main")


async def test_first_engine_gets_the_lease(factory: Factory) -> None:
    lease = await acquire_lease(factory, NAME, "engine-a", ttl=TTL, now=T0)
    assert (lease.name, lease.owner, lease.epoch) == ("account:binance:main", "engine-a", 1)
    assert lease.expires_at == T0 + TTL
    async with factory() as session:
        assert await get_lease(session, NAME) == lease


async def test_a_second_engine_is_refused_while_the_lease_is_live(factory: Factory) -> None:
    await acquire_lease(factory, NAME, "engine-a", ttl=TTL, now=T0)
    with pytest.raises(LeaseHeldError, match="held by 'engine-a' until 2024-05-01T08:00:30") as info:
        await acquire_lease(factory, NAME, "engine-b", ttl=TTL, now=T0 + TTL - timedelta(milliseconds=1))
    assert info.value.owner == "engine-a"
    # Another name (another account) is independent.
    other = await acquire_lease(factory, account_lease_name("binance", "second"), "engine-b", now=T0)
    assert other.owner == "engine-b"


async def test_the_lease_is_taken_over_after_expiry_and_the_old_owner_learns_it(factory: Factory) -> None:
    old = await acquire_lease(factory, NAME, "engine-a", ttl=TTL, now=T0)
    new = await acquire_lease(factory, NAME, "engine-b", ttl=TTL, now=T0 + TTL)
    assert (new.owner, new.epoch, new.acquired_at) == ("engine-b", 2, T0 + TTL)
    with pytest.raises(LeaseLostError, match="no longer held by 'engine-a'"):
        await renew_lease(factory, old, ttl=TTL, now=T0 + TTL + timedelta(seconds=1))
    assert not await release_lease(factory, old)
    async with factory() as session:
        assert (await get_lease(session, NAME)) == new


async def test_renewal_keeps_the_lease(factory: Factory) -> None:
    lease = await acquire_lease(factory, NAME, "engine-a", ttl=TTL, now=T0)
    for minute in range(1, 4):
        lease = await renew_lease(factory, lease, ttl=TTL, now=T0 + timedelta(minutes=minute))
    assert lease.expires_at == T0 + timedelta(minutes=3) + TTL
    with pytest.raises(LeaseHeldError):
        await acquire_lease(factory, NAME, "engine-b", ttl=TTL, now=T0 + timedelta(minutes=3, seconds=29))
    # Re-acquiring by the same owner (a restart of its start-up step) keeps the epoch.
    again = await acquire_lease(factory, NAME, "engine-a", ttl=TTL, now=T0 + timedelta(minutes=4))
    assert (again.epoch, again.acquired_at) == (1, T0)


async def test_release_frees_the_name_at_once(factory: Factory) -> None:
    lease = await acquire_lease(factory, NAME, "engine-a", ttl=TTL, now=T0)
    assert await release_lease(factory, lease)
    nxt = await acquire_lease(factory, NAME, "engine-b", ttl=TTL, now=T0 + timedelta(seconds=1))
    assert (nxt.owner, nxt.epoch) == ("engine-b", 1)


async def test_exactly_one_of_many_racing_engines_wins(engine: AsyncEngine) -> None:
    factories = [session_factory(engine) for _ in range(8)]

    async def contender(i: int) -> str | None:
        try:
            return (await acquire_lease(factories[i], NAME, f"engine-{i}", ttl=TTL)).owner
        except LeaseHeldError:
            return None

    winners = [w for w in await asyncio.gather(*(contender(i) for i in range(8))) if w]
    assert len(winners) == 1


async def test_racing_takeover_of_an_expired_lease_has_one_winner(engine: AsyncEngine) -> None:
    factory = session_factory(engine)
    await acquire_lease(factory, NAME, "dead-engine", ttl=TTL, now=T0)
    later = T0 + timedelta(minutes=5)

    async def contender(i: int) -> int | None:
        try:
            return (await acquire_lease(factory, NAME, f"engine-{i}", ttl=TTL, now=later)).epoch
        except LeaseHeldError:
            return None

    epochs = [e for e in await asyncio.gather(*(contender(i) for i in range(6))) if e is not None]
    assert epochs == [2]


def test_owner_ids_differ_between_calls() -> None:
    assert new_owner_id() != new_owner_id()


async def test_a_lease_needs_a_positive_ttl(factory: Factory) -> None:
    with pytest.raises(ValueError, match="positive"):
        await acquire_lease(factory, NAME, "a", ttl=timedelta(0))
