"""Pair symbols <-> candle file names.

Spot pairs are ccxt symbols ``BASE/QUOTE`` (``ETH/BTC``), perpetual futures ``BASE/QUOTE:SETTLE``
(``XRP/USDT:USDT``). Files are named ``ETH_BTC-5m.csv`` and ``XRP_USDT_USDT-5m-futures.csv``
(the convention of freqtrade's data directories, so existing downloads can be read as they are).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dsl.timeframes import SUPPORTED_TIMEFRAMES

__all__ = [
    "CANDLE_EXTENSIONS",
    "CandleFileName",
    "candle_filename",
    "is_futures",
    "normalize_pair",
    "pair_key",
    "parse_candle_filename",
]

CANDLE_EXTENSIONS: tuple[str, ...] = (".csv", ".csv.gz", ".feather", ".parquet")

_ASSET = r"[A-Z0-9]+"
_PAIR = re.compile(rf"^({_ASSET})/({_ASSET})(?::({_ASSET}))?$")
_FILENAME = re.compile(
    rf"^(?P<key>{_ASSET}_{_ASSET}(?:_{_ASSET})?)-(?P<tf>\d+[smhdw])(?P<futures>-futures)?"
    r"(?P<ext>\.csv|\.csv\.gz|\.feather|\.parquet)$",
    re.IGNORECASE,
)


def normalize_pair(pair: str) -> str:
    """The canonical (upper-case) symbol; raises ValueError for anything that is not BASE/QUOTE[:SETTLE]."""
    text = pair.strip().upper()
    if not _PAIR.match(text):
        raise ValueError(
            f"invalid pair '{pair}': expected BASE/QUOTE (spot, e.g. ETH/BTC) or BASE/QUOTE:SETTLE "
            "(perpetual futures, e.g. XRP/USDT:USDT)"
        )
    return text


def is_futures(pair: str) -> bool:
    return ":" in pair


def pair_key(pair: str) -> str:
    """``ETH/BTC`` -> ``ETH_BTC``; ``XRP/USDT:USDT`` -> ``XRP_USDT_USDT``."""
    return normalize_pair(pair).replace("/", "_").replace(":", "_")


def candle_filename(pair: str, timeframe: str, ext: str = ".parquet") -> str:
    suffix = "-futures" if is_futures(pair) else ""
    return f"{pair_key(pair)}-{timeframe}{suffix}{ext}"


@dataclass(frozen=True, slots=True)
class CandleFileName:
    pair: str
    timeframe: str
    ext: str


def parse_candle_filename(name: str) -> CandleFileName | None:
    """Pair, timeframe and extension of a candle file name, or None when the name does not follow the convention.

    Three-part keys are futures only with the ``-futures`` suffix (``XRP_USDT_USDT-5m-futures.csv``); a
    ``-futures`` file with a two-part key settles in its quote currency.
    """
    match = _FILENAME.match(name)
    if not match or match.group("tf") not in SUPPORTED_TIMEFRAMES:
        return None
    parts = match.group("key").upper().split("_")
    futures = match.group("futures") is not None
    if len(parts) == 3 and not futures:
        return None
    pair = f"{parts[0]}/{parts[1]}"
    if futures:
        pair += f":{parts[2] if len(parts) == 3 else parts[1]}"
    return CandleFileName(pair, match.group("tf"), match.group("ext").lower())
