"""Leases: one engine at a time per database and account.

An engine acquires a lease per name it acts for (``account:<exchange>:<account>``, or ``engine`` for the
whole process) before it trades, renews it well within the time-to-live, and releases it on a clean
stop. Acquisition is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement, atomic on SQLite and
PostgreSQL alike: it succeeds when the name is free, already ours, or its holder's lease expired (a
killed engine); otherwise :class:`LeaseHeldError` and the engine must refuse to start.

``epoch`` grows on every change of holder. Renewal requires owner and epoch to match, so an engine that
was paused past its expiry and lost the lease learns it (:class:`LeaseLostError`) instead of acting
alongside the new holder.

Times come from the engine's clock, so every machine sharing a database needs a synchronised clock; keep
the time-to-live well above the possible skew (the default, 30 s, suits NTP-synchronised hosts).
These functions take the session factory and commit: a lease only means something once committed.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store._sql import upsert_insert
from engine.store.errors import LeaseHeldError, LeaseLostError
from engine.store.models import EngineLease, utcnow

__all__ = [
    "DEFAULT_LEASE_TTL",
    "Lease",
    "account_lease_name",
    "acquire_lease",
    "get_lease",
    "new_owner_id",
    "release_lease",
    "renew_lease",
]

DEFAULT_LEASE_TTL = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    owner: str
    epoch: int
    acquired_at: datetime
    expires_at: datetime


def new_owner_id() -> str:
    """An owner id unique to this process: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def account_lease_name(exchange: str, account: str) -> str:
    return f"account:{exchange}:{account}"


def _lease(row: EngineLease) -> Lease:
    return Lease(row.name, row.owner, row.epoch, row.acquired_at, row.expires_at)


async def acquire_lease(
    factory: async_sessionmaker[AsyncSession],
    name: str,
    owner: str,
    *,
    ttl: timedelta = DEFAULT_LEASE_TTL,
    now: datetime | None = None,
) -> Lease:
    """Take the lease ``name`` for ``owner`` until ``now + ttl``, or raise :class:`LeaseHeldError`."""
    if ttl <= timedelta(0):
        raise ValueError("a lease's time-to-live must be positive")
    now = now or utcnow()
    table = EngineLease.__table__
    for _ in range(3):
        async with factory() as session, session.begin():
            insert = upsert_insert(session, table).values(
                name=name, owner=owner, epoch=1, acquired_at=now, heartbeat_at=now, expires_at=now + ttl
            )
            same_owner = table.c.owner == insert.excluded.owner
            statement = insert.on_conflict_do_update(
                index_elements=["name"],
                set_={
                    "owner": insert.excluded.owner,
                    "epoch": case((same_owner, table.c.epoch), else_=table.c.epoch + 1),
                    "acquired_at": case((same_owner, table.c.acquired_at), else_=insert.excluded.acquired_at),
                    "heartbeat_at": insert.excluded.heartbeat_at,
                    "expires_at": insert.excluded.expires_at,
                },
                where=same_owner | (table.c.expires_at <= insert.excluded.heartbeat_at),
            ).returning(table.c.epoch, table.c.acquired_at, table.c.expires_at)
            row = (await session.execute(statement)).first()
            if row is not None:
                return Lease(name, owner, row.epoch, row.acquired_at, row.expires_at)
            holder = await get_lease(session, name)
        if holder is not None:
            raise LeaseHeldError(name, holder.owner, holder.expires_at)
        # Released between the two statements: try again.
    raise LeaseHeldError(name, "unknown", now + ttl)


async def renew_lease(
    factory: async_sessionmaker[AsyncSession],
    lease: Lease,
    *,
    ttl: timedelta = DEFAULT_LEASE_TTL,
    now: datetime | None = None,
) -> Lease:
    """Extend ``lease`` to ``now + ttl``; :class:`LeaseLostError` if another owner took it meanwhile."""
    now = now or utcnow()
    expires = now + ttl
    async with factory() as session, session.begin():
        result = await session.execute(
            update(EngineLease)
            .where(
                EngineLease.name == lease.name,
                EngineLease.owner == lease.owner,
                EngineLease.epoch == lease.epoch,
            )
            .values(heartbeat_at=now, expires_at=expires)
            .execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLostError(lease.name, lease.owner)
    return Lease(lease.name, lease.owner, lease.epoch, lease.acquired_at, expires)


async def release_lease(factory: async_sessionmaker[AsyncSession], lease: Lease) -> bool:
    """Give the lease up (clean shutdown). False when it was no longer ours."""
    async with factory() as session, session.begin():
        result = await session.execute(
            delete(EngineLease)
            .where(
                EngineLease.name == lease.name,
                EngineLease.owner == lease.owner,
                EngineLease.epoch == lease.epoch,
            )
            .execution_options(synchronize_session=False)
        )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def get_lease(session: AsyncSession, name: str) -> Lease | None:
    row = (await session.execute(select(EngineLease).where(EngineLease.name == name))).scalars().first()
    return None if row is None else _lease(row)
