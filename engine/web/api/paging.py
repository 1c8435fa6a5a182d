"""Pagination of list routes: ``limit`` (1-500) and ``offset`` query parameters, ``Page`` answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["IdPath", "IdQuery", "Paging", "fetch_page"]

# Database ids are signed 64-bit: a larger number would overflow the driver, not just find nothing.
_MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=_MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=_MAX_ID)]


class _Paging:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> None:
        self.limit, self.offset = limit, offset


Paging = Annotated[_Paging, Depends()]


async def fetch_page(db: AsyncSession, query: Select[Any], paging: _Paging) -> dict[str, Any]:
    total = await db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = (await db.scalars(query.limit(paging.limit).offset(paging.offset))).all()
    return {"items": list(rows), "total": total or 0, "limit": paging.limit, "offset": paging.offset}
