"""Checkpoints: one row per bot with its kernel state, instead of ``system``/``checkpoint`` event rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

The newest checkpoint event of each bot is copied into the new table and every checkpoint event is then
deleted, so a database upgraded while bots held positions resumes them. Downgrading copies the rows back
as events. Types are spelled out (not imported from the models) so this file keeps describing the same
schema.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


_events = sa.table(
    "events",
    sa.column("id", sa.BigInteger()),
    sa.column("time", sa.DateTime(timezone=True)),
    sa.column("bot_id", sa.BigInteger()),
    sa.column("category", sa.String(24)),
    sa.column("kind", sa.String(64)),
    sa.column("message", sa.Text()),
    sa.column("data", _json()),
)
_bots = sa.table("bots", sa.column("id", sa.BigInteger()), sa.column("config_hash", sa.String(64)))
_checkpoints = sa.table(
    "checkpoints",
    sa.column("bot_id", sa.BigInteger()),
    sa.column("time", sa.BigInteger()),
    sa.column("pairs", _json()),
    sa.column("timeframe", sa.String(8)),
    sa.column("state", sa.Text()),
    sa.column("config_hash", sa.String(64)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def _doc(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):  # some drivers hand JSON back as text
        value = json.loads(value)
    return value if isinstance(value, dict) else None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("bot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("pairs", _json(), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name="fk_checkpoints_bot_id_bots"),
        sa.PrimaryKeyConstraint("bot_id", name="pk_checkpoints"),
    )
    bind = op.get_bind()
    hashes = dict(bind.execute(sa.select(_bots.c.id, _bots.c.config_hash)).all())
    rows = bind.execute(
        sa.select(_events.c.bot_id, _events.c.data)
        .where(_events.c.kind == "checkpoint", _events.c.bot_id.is_not(None))
        .order_by(_events.c.id.desc())
    ).all()
    seen: set[int] = set()
    now = datetime.now(UTC)
    for bot_id, raw in rows:
        data = _doc(raw)
        if bot_id in seen or not data or "state" not in data:
            continue
        seen.add(bot_id)
        bind.execute(
            _checkpoints.insert().values(
                bot_id=bot_id,
                time=int(data["time"]),
                pairs=list(data.get("pairs") or ()),
                timeframe=str(data.get("timeframe") or ""),
                state=data["state"],
                config_hash=hashes.get(bot_id) or "",
                updated_at=now,
            )
        )
    bind.execute(_events.delete().where(_events.c.kind == "checkpoint"))


def downgrade() -> None:
    bind = op.get_bind()
    for row in bind.execute(sa.select(_checkpoints)).mappings().all():
        bind.execute(
            _events.insert().values(
                time=row["updated_at"],
                bot_id=row["bot_id"],
                category="system",
                kind="checkpoint",
                message="state after the last committed candle",
                data={
                    "time": int(row["time"]),
                    "pairs": list(row["pairs"] or ()),
                    "timeframe": row["timeframe"],
                    "state": row["state"],
                },
            )
        )
    op.drop_table("checkpoints")
