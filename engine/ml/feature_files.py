"""The feature store's files: one folder of Parquet parts per (feature set, pair, timeframe, source).

A part holds consecutive rows: ``time`` (candle open time, int64 ns), ``candle`` (a 64-bit hash of
the candle's time and OHLCV, to notice a corrected or re-fetched candle) and one float32 column per
feature. ``part-<first row>.parquet``: new candles add a part with the new rows only (writing is then
as cheap as the new day, not the whole history); past :data:`MAX_PARTS` parts they are merged into one.
Each part's schema metadata names the key, the features and its first row, so a part of another spec,
a missing part or a part left over from an older write is refused. Pages carry checksums (verified on
read) and parts are written under a temporary name then renamed, so a torn write, a truncated file or
flipped bits read as "damaged", never as values. Uncompressed: feature values are noisy floats that
zstd shrinks by ~10% for a 4x slower read (bench/ml_feature_store.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MAX_PARTS", "Stored", "StoredFileError", "candle_hashes", "read_stored", "write_stored"]

MAX_PARTS = 16
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


def write_stored(folder: Path, key: str, names: tuple[str, ...], stored: Stored, first: int = 0) -> None:
    """Write rows ``first:`` of ``stored`` as a part; ``first == 0`` (or too many parts) replaces
    every part by one holding all rows."""
    folder.mkdir(parents=True, exist_ok=True)
    if first and len(_parts(folder)) >= MAX_PARTS:
        first = 0
    temporary = folder / f"new-{os.getpid()}.tmp"
    _write_part(temporary, key, names, stored, first)
    if first == 0:
        # Parts after the first go before the first is replaced: a reader in between sees the old
        # first part alone, a consistent (shorter) prefix, never old and new rows mixed.
        for start, path in _parts(folder):
            if start:
                path.unlink(missing_ok=True)
    os.replace(temporary, folder / f"part-{first:012d}.parquet")


def _write_part(path: Path, key: str, names: tuple[str, ...], stored: Stored, first: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = slice(first, None)
    arrays = [pa.array(stored.times[rows]), pa.array(stored.hashes[rows])]
    arrays += [pa.array(stored.x[rows, j]) for j in range(stored.x.shape[1])]
    meta = json.dumps({"key": key, "names": list(names), "first": first, "rows": len(stored.times) - first})
    table = pa.Table.from_arrays(
        arrays, names=["time", "candle", *(f"f{j}" for j in range(len(names)))], metadata={_META: meta}
    )
    pq.write_table(table, path, compression="none", write_page_checksum=True)


def _parts(folder: Path) -> list[tuple[int, Path]]:
    out = []
    for path in folder.glob("part-*.parquet"):
        try:
            out.append((int(path.stem[5:]), path))
        except ValueError:
            continue
    return sorted(out)


def read_stored(folder: Path, key: str, names: tuple[str, ...]) -> Stored:
    """Every part's rows; raises :class:`StoredFileError` unless the parts are whole, valid, of
    ``key`` and follow each other without a gap."""
    tables, at = [], 0
    for start, path in _parts(folder):
        if start != at:
            raise StoredFileError(f"{folder}: part {path.name} does not follow row {at} (a part is missing)")
        tables.append(_read_part(path, key, names, start))
        at += tables[-1].num_rows
    if not tables:
        raise StoredFileError(f"{folder} holds no part")
    total = sum(t.num_rows for t in tables)
    times = np.empty(total, dtype=np.int64)
    hashes = np.empty(total, dtype=np.uint64)
    x = np.empty((total, len(names)), dtype=np.float32)
    at = 0
    for table in tables:
        rows = slice(at, at + table.num_rows)
        times[rows] = table.column("time").to_numpy()
        hashes[rows] = table.column("candle").to_numpy()
        for j in range(len(names)):
            x[rows, j] = table.column(f"f{j}").to_numpy(zero_copy_only=False)
        at += table.num_rows
    if total > 1 and not (np.diff(times) > 0).all():
        raise StoredFileError(f"{folder}: its times are not increasing")
    return Stored(times, hashes, x)


def _read_part(path: Path, key: str, names: tuple[str, ...], start: int) -> Any:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, page_checksum_verification=True)
        meta = json.loads((table.schema.metadata or {})[_META])
        whole = meta["rows"] == table.num_rows and meta["first"] == start
    except Exception as exc:  # pyarrow raises its own errors (ArrowInvalid, OSError) on a damaged file
        detail = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise StoredFileError(f"{path} cannot be read ({detail})") from None
    if meta["key"] != key or meta["names"] != list(names) or not whole:
        raise StoredFileError(f"{path} holds another feature set or a partial write")
    return table
