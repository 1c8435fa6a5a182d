"""One reading interface over the store and over a directory of files, for the backtester and the demo.

source = open_source(data_dir=args.data) if args.data else open_source(exchange="binance")
candles = source.load("ETH/BTC", "1h", start, end)
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from engine.data.datadir import DataDirectory
from engine.data.naming import normalize_pair
from engine.data.store import CandleStore

__all__ = ["CandleSource", "StoreView", "open_source"]


@runtime_checkable
class CandleSource(Protocol):
    def load(self, pair: str, timeframe: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        """Candles with open time in [start, end) in the frame contract; raises DataError when absent."""
        ...

    def pairs(self) -> list[str]: ...

    def timeframes(self, pair: str) -> list[str]:
        """Timeframes held as files (others may still load by resampling)."""
        ...


class StoreView:
    """The store's series of one exchange, as a :class:`CandleSource`."""

    def __init__(self, store: CandleStore, exchange: str):
        self.store = store
        self.exchange = exchange

    def load(self, pair: str, timeframe: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        return self.store.load(self.exchange, pair, timeframe, start, end)

    def pairs(self) -> list[str]:
        return sorted({entry.pair for entry in self.store.list(self.exchange)})

    def timeframes(self, pair: str) -> list[str]:
        return self.store.timeframes(self.exchange, normalize_pair(pair))

    def synthetic(self, pair: str, timeframe: str) -> bool:
        """Whether the series (or the lower one it would be resampled from) is a synthetic sample."""
        from engine.data.resample import source_timeframe_for

        tf = (
            timeframe
            if timeframe in self.timeframes(pair)
            else source_timeframe_for(timeframe, self.timeframes(pair))
        )
        entry = self.store.entry(self.exchange, pair, tf) if tf else None
        return bool(entry and entry.synthetic)


def open_source(
    *, data_dir: str | os.PathLike[str] | None = None, exchange: str = "binance", store_root: Any = None
) -> CandleSource:
    """A directory of files when ``data_dir`` is given, else the store's series of ``exchange``."""
    if data_dir is not None:
        return DataDirectory(data_dir)
    return StoreView(CandleStore(store_root), exchange)
