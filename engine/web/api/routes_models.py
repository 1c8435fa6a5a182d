"""``/models``: the model registry for API clients: ``GET /models/`` (any signed-in role), and an
ADMIN's ``POST /models/{name}/promote`` and ``POST /models/{name}/rollback``, through the same action
as the ``/models`` page (:mod:`engine.web.admin_actions`: the files' checksums checked as by ``engine ml
promote``, audited, recorded as an event)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from engine.ml.errors import MLError
from engine.store.models import MLModel
from engine.web import admin_actions
from engine.web.api.deps import DB, Principal, Reader, address_of, require
from engine.web.api.validation import StrictJsonRoute

__all__ = ["ModelVersionOut", "PromoteIn", "router"]

router = APIRouter(prefix="/models", tags=["models"], route_class=StrictJsonRoute)
ModelName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class ModelVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    version: str
    status: str  # candidate | production | retired
    learner: str
    spec_hash: str
    data_start: int  # first training candle's open time, ns since the epoch (UTC)
    data_end: int
    metrics: dict[str, Any]  # out of sample (walk-forward), the naive baseline beside the model
    created_at: datetime
    promoted_by: str | None
    promoted_at: datetime | None


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=32)


@router.get("/", response_model=list[ModelVersionOut])
async def list_models(_: Reader, db: DB) -> list[MLModel]:
    """Every registered version of every model, oldest first per model."""
    return list(
        (await db.scalars(select(MLModel).order_by(MLModel.name, MLModel.created_at, MLModel.id))).all()
    )


@router.post("/{name}/promote", response_model=ModelVersionOut, responses={409: {"description": "refused"}})
async def promote_model(
    name: ModelName,
    body: PromoteIn,
    principal: Annotated[Principal, require("models:write")],
    db: DB,
    request: Request,
) -> Any:
    """Serve ``version`` (running bots pick it up within a minute); refused (409, nothing changed) for an
    unknown version or files missing or changed since training."""
    try:
        return await admin_actions.promote_model(
            db, name, body.version, user=principal.user, address=address_of(request)
        )
    except MLError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post("/{name}/rollback", response_model=ModelVersionOut, responses={409: {"description": "refused"}})
async def rollback_model(
    name: ModelName, principal: Annotated[Principal, require("models:write")], db: DB, request: Request
) -> Any:
    """Retire the production version and serve the one promoted before it."""
    try:
        return await admin_actions.rollback_model(db, name, user=principal.user, address=address_of(request))
    except MLError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
