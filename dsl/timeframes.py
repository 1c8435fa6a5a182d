"""Timeframe and duration literals (``5m``, ``1h``, ``1d``) shared by the DSL and the configuration."""

from __future__ import annotations

import re

__all__ = ["SUPPORTED_TIMEFRAMES", "is_supported_timeframe", "parse_duration", "timeframe_seconds"]

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d+)([smhdw])$")

# The candle intervals Binance (and most ccxt exchanges) serve; other timeframes cannot be fetched.
SUPPORTED_TIMEFRAMES: tuple[str, ...] = (
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
)  # fmt: skip


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``30m`` or ``4h``; raises ValueError for anything else."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"invalid duration '{text}': expected a number and a unit s, m, h, d or w (e.g. 15m)"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def is_supported_timeframe(text: str) -> bool:
    return text in SUPPORTED_TIMEFRAMES


def timeframe_seconds(text: str) -> int:
    """Seconds in a supported candle timeframe; raises ValueError naming the supported ones."""
    if text not in SUPPORTED_TIMEFRAMES:
        raise ValueError(f"unsupported timeframe '{text}' (supported: {', '.join(SUPPORTED_TIMEFRAMES)})")
    return parse_duration(text)
