"""Importing candle files (CSV, Feather, Parquet) into the store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dsl.errors import Diagnostic
from dsl.timeframes import timeframe_seconds
from engine.data.errors import DataError, issue
from engine.data.files import read_raw
from engine.data.naming import normalize_pair, parse_candle_filename
from engine.data.store import CandleStore, StoreEntry
from engine.data.validate import infer_timeframe, validate_candles

__all__ = ["ImportResult", "import_file"]


@dataclass(frozen=True, slots=True)
class ImportResult:
    path: Path
    entry: StoreEntry
    diagnostics: list[Diagnostic]


def import_file(
    path: str | os.PathLike[str],
    store: CandleStore,
    *,
    exchange: str = "binance",
    pair: str | None = None,
    timeframe: str | None = None,
) -> ImportResult:
    """Validate one file and merge it into the store as real (non-synthetic) data.

    Pair and timeframe come from the file name (``ETH_BTC-5m.csv``) unless given; the timeframe may also be
    inferred from the candles' spacing. Raises :class:`DataError` for anything that prevents a clean import.
    """
    path = Path(path)
    source = str(path)
    named = parse_candle_filename(path.name)
    try:
        pair = normalize_pair(pair) if pair else (named.pair if named else None)
        if timeframe is not None:
            timeframe_seconds(timeframe)
    except ValueError as exc:
        raise DataError.single("DATA015", str(exc), source) from None
    if pair is None:
        raise DataError.single(
            "DATA015",
            f"cannot tell the pair from the file name '{path.name}': name it like ETH_BTC-5m.csv "
            "(or XRP_USDT_USDT-5m-futures.csv) or pass --pair",
            source,
        )
    raw, binary = read_raw(path)
    first_line = 1 if binary else int(raw.attrs.get("first_line", 2))
    timeframe = timeframe or (named.timeframe if named else None)
    candles, found = validate_candles(raw, source, timeframe=timeframe, first_line=first_line, binary=binary)
    if timeframe is None:
        timeframe = infer_timeframe(candles.index)
        if timeframe is None:
            raise DataError(
                [issue("DATA015", "cannot tell the timeframe of these candles; pass --timeframe", source)]
            )
        # The timeframe is known only now: check alignment and gaps against it.
        candles, found = validate_candles(
            raw, source, timeframe=timeframe, first_line=first_line, binary=binary
        )
    entry = store.save(exchange, pair, timeframe, candles, source=f"import:{path.name}")
    return ImportResult(path, entry, found)
