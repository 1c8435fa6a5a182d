"""Deterministic client order ids: the same (bot, pair, signal candle, action) always gets the same id,
so a retried or restarted engine that decides the same order again finds it in the database (and an
exchange refuses the duplicate) instead of placing it twice."""

from __future__ import annotations

import hashlib

import pandas as pd

from engine.store import CLIENT_ID_PREFIX

__all__ = ["client_order_id"]


def client_order_id(bot: str, pair: str, signal_time: pd.Timestamp, action: str) -> str:
    """``ye`` + 32 hex digits (36 characters, accepted by every ccxt exchange)."""
    stamp = pd.Timestamp(signal_time).as_unit("ns").value
    digest = hashlib.sha256(f"{bot}\x1f{pair}\x1f{stamp}\x1f{action}".encode()).hexdigest()
    return f"{CLIENT_ID_PREFIX}{digest[:32]}"
