"""The feature store's files: one Parquet file per (feature set, pair, timeframe, candle source).

Columns: ``time`` (candle open time, int64 ns), ``candle`` (a 64-bit hash of the candle's time and
OHLCV, to notice a corrected or re-fetched candle) and one float32 column per feature. The schema
metadata names the key and the features, so a file renamed or written by another spec is refused.
Pages carry checksums (verified on read) and a file is replaced by rename, so a torn write, a
truncated file or flipped bits read as "corrupted", never as values.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Stored", "StoredFileError", "candle_hashes", "read_stored", "write_stored"]

_META = b"engine.features"
_CANDLE = ("open", "high", "low", "close", "volume")
# Odd 64-bit constants (from splitmix64) mixing each column into the row hash.
_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93, 0xA0761D6478BD642F,
     0xE7037ED1A0B428DB],
    dtype=np.uint64,
)  # fmt: skip


class StoredFileError(Exception):
    """A stored file that cannot be used (corrupted, truncated, of another key)."""


@dataclass(frozen=True)
class Stored:
    times: np.ndarray  # int64 ns
    hashes: np.ndarray  # uint64
    x: np.ndarray  # (rows, features) float32


def candle_hashes(times: np.ndarray, candles: pd.DataFrame) -> np.ndarray:
    """One uint64 per candle from its open time and the bits of its OHLCV values: any correction of a
    candle changes its hash (not a cryptographic hash: it detects accidents, not forgeries)."""
    with np.errstate(over="ignore"):
        h = times.astype(np.int64).view(np.uint64) * _MIX[5]
        for column, mix in zip(_CANDLE, _MIX[:5], strict=True):
            bits = np.ascontiguousarray(candles[column].to_numpy(dtype=np.float64)).view(np.uint64)
            h = (h ^ (bits * mix)) * np.uint64(0xFF51AFD7ED558CCD)
            h ^= h >> np.uint64(33)
    return h


def write_stored(path: Path, key: str, names: tuple[str, ...], stored: Stored) -> None:
    """Write (temporary file, then rename: a reader sees the old file or the new one, whole)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = [pa.array(stored.times), pa.array(stored.hashes)]
    arrays += [pa.array(stored.x[:, j]) for j in range(stored.x.shape[1])]
    meta = json.dumps({"key": key, "names": list(names), "rows": len(stored.times)})
    table = pa.Table.from_arrays(
        arrays, names=["time", "candle", *(f"f{j}" for j in range(len(names)))], metadata={_META: meta}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, temporary, compression="zstd", write_page_checksum=True)
    os.replace(temporary, path)


def read_stored(path: Path, key: str, names: tuple[str, ...]) -> Stored:
    """The file's rows; raises :class:`StoredFileError` when it is not a whole, valid file of ``key``."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, page_checksum_verification=True)
        meta = json.loads((table.schema.metadata or {})[_META])
        if meta["key"] != key or meta["names"] != list(names) or meta["rows"] != table.num_rows:
            raise StoredFileError(f"{path} holds another feature set or a partial write")
        times = table.column("time").to_numpy().astype(np.int64, copy=False)
        hashes = table.column("candle").to_numpy().astype(np.uint64, copy=False)
        x = np.empty((table.num_rows, len(names)), dtype=np.float32)
        for j in range(len(names)):
            x[:, j] = table.column(f"f{j}").to_numpy(zero_copy_only=False)
    except StoredFileError:
        raise
    except Exception as exc:  # pyarrow raises its own errors (ArrowInvalid, OSError) on a damaged file
        detail = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise StoredFileError(f"{path} cannot be read ({detail})") from None
    if len(times) > 1 and not (np.diff(times) > 0).all():
        raise StoredFileError(f"{path}: its times are not increasing")
    return Stored(times, hashes, x)
