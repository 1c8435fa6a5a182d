"""A bot's trading state as bytes and back: the kernel's numpy arrays, saved after every processed
candle in the same transaction as that candle's orders, trades and events (see ``persist``)."""

from __future__ import annotations

import base64
import io

import numpy as np

from engine.trading.state import TradingState

__all__ = ["dump_state", "load_state"]

_ARRAYS = ("prm_i", "prm_f", "lim", "acct_f", "acct_i", "pos_f", "pos_i", "ring", "tr_f", "tr_i", "bl")


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
