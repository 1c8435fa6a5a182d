"""A bot's trading state as bytes and back (the kernel's numpy arrays), and its row in the ``checkpoints``
table: one per bot, replaced in the same transaction as the candle's orders, trades and events."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import Checkpoint, Event
from engine.trading.state import TradingState

__all__ = ["SavedCheckpoint", "dump_state", "load_checkpoint", "load_state", "save_checkpoint"]

_ARRAYS = ("prm_i", "prm_f", "lim", "acct_f", "acct_i", "pos_f", "pos_i", "ring", "tr_f", "tr_i", "bl")
_LEGACY_KIND = "checkpoint"  # before migration 0003 the checkpoint was a system event


def dump_state(state: TradingState) -> str:
    """The state as base64 text (JSON-safe). Trade and blocked buffers are cut to their used rows."""
    buffer = io.BytesIO()
    arrays = {name: getattr(state, name) for name in _ARRAYS}
    arrays["tr_f"] = state.tr_f[: state.n_trades]
    arrays["tr_i"] = state.tr_i[: state.n_trades]
    arrays["bl"] = state.bl[: state.n_blocked]
    np.savez_compressed(buffer, pairs=np.array(state.pairs, dtype=str), **arrays)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def load_state(text: str) -> TradingState:
    with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as data:
        arrays = {name: np.array(data[name]) for name in _ARRAYS}
        pairs = tuple(str(p) for p in data["pairs"])
    state = TradingState(pairs=pairs, **arrays)
    # Give the buffers headroom again (they were cut to the used rows).
    state.reserve(64)
    return state


@dataclass(frozen=True, slots=True)
class SavedCheckpoint:
    time: int  # open time (ns) of the last committed candle
    pairs: tuple[str, ...]
    timeframe: str
    state: str  # dump_state text
    config_hash: str


async def save_checkpoint(
    session: AsyncSession,
    bot_id: int,
    *,
    time: int,
    pairs: tuple[str, ...] | list[str],
    timeframe: str,
    state: TradingState,
    config_hash: str,
) -> None:
    """Replace the bot's checkpoint in the caller's transaction."""
    text = dump_state(state)
    row = await session.get(Checkpoint, bot_id)
    if row is None:
        session.add(
            Checkpoint(
                bot_id=bot_id,
                time=time,
                pairs=list(pairs),
                timeframe=timeframe,
                state=text,
                config_hash=config_hash,
            )
        )
    else:
        row.time, row.pairs, row.timeframe = time, list(pairs), timeframe
        row.state, row.config_hash = text, config_hash
    await session.flush()


async def load_checkpoint(session: AsyncSession, bot_id: int) -> SavedCheckpoint | None:
    """The bot's checkpoint; a checkpoint event left by an engine older than the table is read (and
    removed, the next save writes the row) when there is no row yet."""
    row = await session.get(Checkpoint, bot_id, populate_existing=True)
    if row is not None:
        return SavedCheckpoint(
            int(row.time), tuple(row.pairs or ()), row.timeframe, row.state, row.config_hash
        )
    event = (
        await session.execute(
            select(Event)
            .where(Event.bot_id == bot_id, Event.kind == _LEGACY_KIND)
            .order_by(Event.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if event is None or not event.data or "state" not in event.data:
        return None
    data = event.data
    await session.execute(delete(Event).where(Event.bot_id == bot_id, Event.kind == _LEGACY_KIND))
    return SavedCheckpoint(
        int(data["time"]), tuple(data.get("pairs") or ()), str(data.get("timeframe") or ""), data["state"], ""
    )
