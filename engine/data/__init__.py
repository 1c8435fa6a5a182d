"""Candle data: a local Parquet store, file readers, validation, resampling, synthetic samples and
downloads through ccxt. See docs/data.md.

    store = CandleStore()                                   # $ENGINE_HOME/data
    candles = store.load("binance", "ETH/BTC", "1h")        # resampled from 5m when 1h is not stored
    candles = DataDirectory("user_data/data").load("XRP/USDT:USDT", "5m")
"""

from engine.data.datadir import DataDirectory
from engine.data.errors import DataError
from engine.data.files import read_candle_file
from engine.data.naming import candle_filename, normalize_pair, pair_key, parse_candle_filename
from engine.data.resample import resample_candles, source_timeframe_for
from engine.data.source import CandleSource, StoreView, open_source
from engine.data.store import CandleStore, Coverage, StoreEntry, default_store_root
from engine.data.synth import SynthParams, synth_candles
from engine.data.validate import CANDLE_COLUMNS, find_gaps, infer_timeframe, validate_candles

__all__ = [
    "CANDLE_COLUMNS",
    "CandleSource",
    "CandleStore",
    "Coverage",
    "DataDirectory",
    "DataError",
    "StoreEntry",
    "StoreView",
    "SynthParams",
    "candle_filename",
    "default_store_root",
    "find_gaps",
    "infer_timeframe",
    "normalize_pair",
    "open_source",
    "pair_key",
    "parse_candle_filename",
    "read_candle_file",
    "resample_candles",
    "source_timeframe_for",
    "synth_candles",
    "validate_candles",
]
