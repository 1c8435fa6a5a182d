"""The model registry in the SQL store: versions, their status and who promoted them.

Status: ``candidate`` (trained, not serving), ``production`` (at most one per model name: what live
rules read), ``retired`` (served before, or set aside). Promotion retires the current production
version; rollback puts back the version that was in production before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.ml.errors import MLError
from engine.store.models import MLModel

__all__ = ["get_version", "list_versions", "production", "promote", "register_version", "rollback"]

CANDIDATE, PRODUCTION, RETIRED = "candidate", "production", "retired"


async def register_version(
    session: AsyncSession,
    *,
    name: str,
    version: str,
    spec_hash: str,
    learner: str,
    data_start: int,
    data_end: int,
    path: str,
    checksum: str,
    metrics: Mapping[str, Any],
    params: Mapping[str, Any],
    importance: Mapping[str, Any],
) -> MLModel:
    """Add a candidate version; the same (name, version) again only refreshes its files and metrics
    (same spec and data: the same model, reproducibly)."""
    row = await get_version(session, name, version)
    if row is None:
        row = MLModel(name=name, version=version, status=CANDIDATE)
        session.add(row)
    row.spec_hash, row.learner, row.data_start, row.data_end = spec_hash, learner, data_start, data_end
    row.path, row.checksum = path, checksum
    row.metrics, row.params, row.importance = dict(metrics), dict(params), dict(importance)
    await session.flush()
    return row


async def get_version(session: AsyncSession, name: str, version: str) -> MLModel | None:
    return (
        await session.execute(select(MLModel).where(MLModel.name == name, MLModel.version == version))
    ).scalar_one_or_none()


async def list_versions(session: AsyncSession, name: str | None = None) -> list[MLModel]:
    query = select(MLModel).order_by(MLModel.name, MLModel.created_at, MLModel.id)
    if name is not None:
        query = query.where(MLModel.name == name)
    return list((await session.execute(query)).scalars())


async def production(session: AsyncSession, name: str) -> MLModel | None:
    return (
        await session.execute(select(MLModel).where(MLModel.name == name, MLModel.status == PRODUCTION))
    ).scalar_one_or_none()


async def promote(session: AsyncSession, name: str, version: str, by: str) -> MLModel:
    """Make ``version`` the production version of ``name`` (the current one is retired)."""
    row = await get_version(session, name, version)
    if row is None:
        known = [r.version for r in await list_versions(session, name)]
        hint = f" (versions: {', '.join(known)})" if known else f" (no versions of '{name}' are registered)"
        raise MLError("ML008", f"unknown version '{version}' of model '{name}'{hint}")
    if row.status == PRODUCTION:
        return row
    current = await production(session, name)
    if current is not None:
        current.status = RETIRED
    await session.flush()
    row.status, row.promoted_by, row.promoted_at = PRODUCTION, by, datetime.now(UTC)
    await session.flush()
    return row


async def rollback(session: AsyncSession, name: str, by: str) -> MLModel:
    """Retire the production version and put back the one promoted before it."""
    current = await production(session, name)
    if current is None:
        raise MLError("ML008", f"model '{name}' has no production version to roll back")
    earlier = [
        r
        for r in await list_versions(session, name)
        if r.id != current.id and r.promoted_at is not None and r.status == RETIRED
    ]
    if not earlier:
        raise MLError("ML008", f"model '{name}' has no earlier production version to go back to")
    previous = max(earlier, key=lambda r: (r.promoted_at, r.id))
    current.status = RETIRED
    await session.flush()
    previous.status, previous.promoted_by, previous.promoted_at = PRODUCTION, by, datetime.now(UTC)
    await session.flush()
    return previous
