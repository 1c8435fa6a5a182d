"""The local candle store: one Parquet file per exchange, pair and timeframe.

Layout: ``<root>/<exchange>/<BASE_QUOTE[_SETTLE]>-<timeframe>[-futures].parquet`` where ``root`` is
``$ENGINE_HOME/data`` (``ENGINE_HOME`` defaults to ``./var``). Columns ``date`` (timestamp[ms, UTC], the
candle open time) and float64 ``open, high, low, close, volume``, zstd-compressed, in row groups of 100k
candles so that a time range reads only the groups it needs. The file's Parquet key-value metadata
(key ``engine.candles``) holds a JSON document: pair, timeframe, ``synthetic``, ``source``, the ``fetched``
time ranges (which parts of history were asked for and received, empty or not) and the known ``gaps``
inside them, so metadata and candles can never disagree. Writes go to a temporary file in the same
directory, then ``os.replace`` it over the old one: a crash leaves the old file or the new one, never half.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dsl.timeframes import SUPPORTED_TIMEFRAMES, timeframe_seconds
from engine.data._frames import as_utc, empty_frame, slice_frame
from engine.data.errors import DataError, issue
from engine.data.naming import candle_filename, normalize_pair, parse_candle_filename
from engine.data.ranges import merge_ranges
from engine.data.resample import resample_candles, source_timeframe_for
from engine.data.validate import CANDLE_COLUMNS, find_gaps, timeframe_origin_ns

__all__ = ["CandleStore", "Coverage", "StoreEntry", "default_store_root"]

_META_KEY = b"engine.candles"
_META_VERSION = 1
_ROW_GROUP = 100_000
_EXCHANGE = re.compile(r"^[a-z0-9_]+$")
_SCHEMA = pa.schema(
    [pa.field("date", pa.timestamp("ms", tz="UTC"), nullable=False)]
    + [pa.field(c, pa.float64(), nullable=False) for c in CANDLE_COLUMNS]
)
_MS = 1_000
_NS_PER_MS = 1_000_000

Range = tuple[pd.Timestamp, pd.Timestamp]


def default_store_root() -> Path:
    return Path(os.environ.get("ENGINE_HOME") or "var") / "data"


@dataclass(frozen=True, slots=True)
class Coverage:
    """What is known about the history of one series. ``start``/``end`` are the open times of the first and
    last stored candles; ``fetched`` and ``gaps`` are [start, end) ranges of open times, where ``fetched``
    includes stretches the exchange had no candles for (before a listing); ``missing`` counts the candles
    inside the gaps."""

    start: pd.Timestamp | None
    end: pd.Timestamp | None
    rows: int
    fetched: tuple[Range, ...]
    gaps: tuple[Range, ...]
    missing: int


@dataclass(frozen=True, slots=True)
class StoreEntry:
    exchange: str
    pair: str
    timeframe: str
    path: Path
    rows: int
    start: pd.Timestamp | None  # open time of the first candle
    end: pd.Timestamp | None  # open time of the last candle
    synthetic: bool
    source: str
    updated: str
    gaps: tuple[Range, ...]
    fetched: tuple[Range, ...]

    @property
    def missing_candles(self) -> int:
        step = pd.Timedelta(seconds=timeframe_seconds(self.timeframe))
        return sum(int((b - a) / step) for a, b in self.gaps)


def _ms(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).value) // _NS_PER_MS


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


class CandleStore:
    """Candles on disk, keyed by exchange, pair and timeframe."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else default_store_root()

    # ---- paths and metadata -------------------------------------------------------------

    def path(self, exchange: str, pair: str, timeframe: str) -> Path:
        if not _EXCHANGE.match(exchange):
            raise ValueError(f"invalid exchange name '{exchange}': use the ccxt id, e.g. binance")
        timeframe_seconds(timeframe)
        return self.root / exchange / candle_filename(normalize_pair(pair), timeframe)

    def entry(self, exchange: str, pair: str, timeframe: str) -> StoreEntry | None:
        """Metadata of the stored series (read from the file footer only), or None when nothing is stored."""
        path = self.path(exchange, pair, timeframe)
        return self._read_entry(path, exchange) if path.is_file() else None

    def coverage(self, exchange: str, pair: str, timeframe: str) -> Coverage | None:
        found = self.entry(exchange, pair, timeframe)
        if found is None:
            return None
        return Coverage(found.start, found.end, found.rows, found.fetched, found.gaps, found.missing_candles)

    def list(self, exchange: str | None = None) -> list[StoreEntry]:
        """Every stored series (optionally of one exchange), sorted by exchange, pair, timeframe.

        Files whose footer cannot be read are left out; :meth:`unreadable` names them."""
        entries = [
            e for e in (self._read_entry(p, p.parent.name) for p in self._files(exchange)) if e is not None
        ]
        order = {tf: i for i, tf in enumerate(SUPPORTED_TIMEFRAMES)}
        return sorted(entries, key=lambda e: (e.exchange, e.pair, order.get(e.timeframe, 99)))

    def unreadable(self, exchange: str | None = None) -> list[Path]:
        """Candle files in the store that cannot be read (corrupt or not Parquet)."""
        return [p for p in self._files(exchange) if self._read_entry(p, p.parent.name) is None]

    def _files(self, exchange: str | None) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [
            path
            for folder in sorted(p for p in self.root.iterdir() if p.is_dir())
            if exchange is None or folder.name == exchange
            for path in sorted(folder.glob("*.parquet"))
            if not path.name.startswith(".") and parse_candle_filename(path.name) is not None
        ]

    def timeframes(self, exchange: str, pair: str) -> list[str]:
        """Timeframes stored for a pair (files only, not the ones that can be resampled)."""
        return [tf for tf in SUPPORTED_TIMEFRAMES if self.path(exchange, pair, tf).is_file()]

    def _read_entry(self, path: Path, exchange: str) -> StoreEntry | None:
        try:
            meta = pq.read_metadata(path)
            doc = json.loads((meta.metadata or {}).get(_META_KEY, b"{}"))
        except (OSError, pa.ArrowException, ValueError):
            return None
        named = parse_candle_filename(path.name)
        pair = doc.get("pair") or (named.pair if named else path.stem)
        timeframe = doc.get("timeframe") or (named.timeframe if named else "?")
        return StoreEntry(
            exchange=exchange,
            pair=pair,
            timeframe=timeframe,
            path=path,
            rows=meta.num_rows,
            start=_ts(doc["first"]) if doc.get("first") is not None else None,
            end=_ts(doc["last"]) if doc.get("last") is not None else None,
            synthetic=bool(doc.get("synthetic", False)),
            source=str(doc.get("source", "unknown")),
            updated=str(doc.get("updated", "")),
            gaps=tuple((_ts(a), _ts(b)) for a, b in doc.get("gaps", [])),
            fetched=tuple((_ts(a), _ts(b)) for a, b in doc.get("fetched", [])),
        )

    # ---- reading ------------------------------------------------------------------------

    def load(
        self,
        exchange: str,
        pair: str,
        timeframe: str,
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """Candles with open time in [start, end) (either bound optional), in the frame contract.

        When ``timeframe`` is not stored it is resampled from the finest stored lower timeframe that
        divides it (complete candles only, see :mod:`engine.data.resample`). Raises :class:`DataError`
        (DATA016) when neither exists.
        """
        start, end = as_utc(start), as_utc(end)
        path = self.path(exchange, pair, timeframe)
        if path.is_file():
            return self._read(path, start, end)
        lower = source_timeframe_for(timeframe, self.timeframes(exchange, pair))
        if lower is None:
            stored = self.timeframes(exchange, pair)
            hint = (
                f"stored for this pair: {', '.join(stored)} (none divides {timeframe})"
                if stored
                else "run `engine data download` or `engine data synth` first"
            )
            raise DataError(
                [
                    issue(
                        "DATA016",
                        f"no {timeframe} candles stored for {exchange} {normalize_pair(pair)}; {hint}",
                        str(path),
                    )
                ]
            )
        step = timeframe_seconds(timeframe) * 1_000_000_000
        origin = timeframe_origin_ns(timeframe)
        # Widen the read to whole target buckets so a bound inside a bucket does not make it partial.
        lo = None if start is None else pd.Timestamp((start.value - origin) // step * step + origin, tz="UTC")
        hi = None if end is None else pd.Timestamp(-((origin - end.value) // step) * step + origin, tz="UTC")
        lower_frame = self._read(self.path(exchange, pair, lower), lo, hi)
        frame = resample_candles(lower_frame, lower, timeframe)
        return slice_frame(frame, start, end)

    def _read(self, path: Path, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
        try:
            handle = pq.ParquetFile(path)
            groups = _row_groups(handle, start, end)
            table = handle.read_row_groups(groups, columns=["date", *CANDLE_COLUMNS]) if groups else None
        except (OSError, pa.ArrowException) as exc:
            raise DataError.single("DATA014", f"cannot read stored candles: {exc}", str(path)) from None
        if table is None or table.num_rows == 0:
            return empty_frame()
        # Exactly one copy per column (Arrow's buffers are read-only); one block per column, no consolidation.
        dates = _column(table, "date", pa.int64())
        dates *= _NS_PER_MS
        index = pd.DatetimeIndex(dates.view("datetime64[ns]"), name="date").tz_localize("UTC")
        columns = {c: _column(table, c, pa.float64()) for c in CANDLE_COLUMNS}
        frame = pd.DataFrame(columns, index=index, copy=False)
        return slice_frame(frame, start, end)

    # ---- writing ------------------------------------------------------------------------

    def save(
        self,
        exchange: str,
        pair: str,
        timeframe: str,
        candles: pd.DataFrame,
        *,
        source: str,
        synthetic: bool = False,
        fetched: Sequence[Range] = (),
        replace: bool = False,
    ) -> StoreEntry:
        """Merge ``candles`` (frame contract, already validated) into the stored series and write it atomically.

        New candles win over stored ones at the same open time. ``fetched`` names the [start, end) ranges
        this data answers for (a download's requested range, empty parts included); by default the span of
        ``candles``. Real and synthetic data are never mixed: saving real data over a synthetic series
        replaces it, and saving synthetic data over real data raises unless ``replace``.
        """
        pair = normalize_pair(pair)
        path = self.path(exchange, pair, timeframe)
        _check_contract(candles, str(path), timeframe)
        old = self.entry(exchange, pair, timeframe)
        keep_old = old is not None and not replace
        if keep_old and synthetic and not old.synthetic:  # type: ignore[union-attr]
            raise DataError.single(
                "DATA016",
                f"{exchange} {pair} {timeframe} holds real candles; refusing to overwrite them with synthetic "
                "ones (use --force to replace)",
                str(path),
            )
        if keep_old and old.synthetic and not synthetic:  # type: ignore[union-attr]
            keep_old = False  # real data replaces a synthetic sample entirely

        step_ms = timeframe_seconds(timeframe) * _MS
        ranges = [(_ms(a), _ms(b)) for a, b in fetched]
        if not ranges and len(candles):
            ranges = [(_ms(candles.index[0]), _ms(candles.index[-1]) + step_ms)]
        if keep_old:
            stored = self._read(path, None, None)
            candles = pd.concat([stored[~stored.index.isin(candles.index)], candles]).sort_index()
            ranges += [(_ms(a), _ms(b)) for a, b in old.fetched]  # type: ignore[union-attr]
            if old.source != source and source not in old.source:  # type: ignore[union-attr]
                source = f"{old.source}; {source}"  # type: ignore[union-attr]
        fetched_ms = merge_ranges(ranges)
        gaps = _known_gaps(candles, timeframe, fetched_ms)
        doc = {
            "version": _META_VERSION,
            "exchange": exchange,
            "pair": pair,
            "timeframe": timeframe,
            "synthetic": synthetic,
            "source": source,
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "first": _ms(candles.index[0]) if len(candles) else None,
            "last": _ms(candles.index[-1]) if len(candles) else None,
            "fetched": fetched_ms,
            "gaps": gaps,
        }
        _write_atomic(path, candles, doc)
        entry = self._read_entry(path, exchange)
        assert entry is not None
        return entry

    def delete(self, exchange: str, pair: str, timeframe: str) -> bool:
        path = self.path(exchange, pair, timeframe)
        if path.is_file():
            path.unlink()
            return True
        return False


def _column(table: pa.Table, name: str, as_type: pa.DataType) -> np.ndarray:
    """A writable numpy copy of one column, built straight from its chunks."""
    chunks = table.column(name).chunks
    return np.concatenate([chunk.cast(as_type).to_numpy(zero_copy_only=False) for chunk in chunks])


def _row_groups(handle: pq.ParquetFile, start: pd.Timestamp | None, end: pd.Timestamp | None) -> list[int]:
    """Row groups that may hold candles in [start, end), judged from the footer's min/max statistics."""
    meta = handle.metadata
    groups = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(0).statistics
        if stats is None or not stats.has_min_max:
            groups.append(i)
            continue
        lo, hi = pd.Timestamp(stats.min), pd.Timestamp(stats.max)
        lo = lo.tz_localize("UTC") if lo.tzinfo is None else lo
        hi = hi.tz_localize("UTC") if hi.tzinfo is None else hi
        if (end is not None and lo >= end) or (start is not None and hi < start):
            continue
        groups.append(i)
    return groups


def _check_contract(candles: pd.DataFrame, source: str, timeframe: str) -> None:
    problems = []
    if not isinstance(candles.index, pd.DatetimeIndex) or str(candles.index.tz) != "UTC":
        problems.append("the index must be a UTC DatetimeIndex")
    elif not candles.index.is_monotonic_increasing or candles.index.has_duplicates:
        problems.append("the index must be sorted without duplicates")
    elif len(candles):
        step = timeframe_seconds(timeframe) * 1_000_000_000
        if ((candles.index.as_unit("ns").asi8 - timeframe_origin_ns(timeframe)) % step != 0).any():
            problems.append(f"open times must lie on {timeframe} boundaries")
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        problems.append(f"missing columns {', '.join(missing)}")
    elif candles[list(CANDLE_COLUMNS)].isna().to_numpy().any():
        problems.append("NaN values are not allowed (validate the candles first)")
    if problems:
        raise DataError([issue("DATA014", f"cannot store candles: {p}", source) for p in problems])


def _known_gaps(
    candles: pd.DataFrame, timeframe: str, fetched: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Gaps as [first missing, first present) ms ranges, only where history was actually fetched (a hole
    between two separate downloads is not a gap of the exchange, it was never asked for)."""
    step_ms = timeframe_seconds(timeframe) * _MS
    out = []
    for first_missing, last_missing in find_gaps(candles.index, timeframe):
        a, b = _ms(first_missing), _ms(last_missing) + step_ms
        if any(lo <= a and b <= hi for lo, hi in fetched):
            out.append((a, b))
    return out


def _write_atomic(path: Path, candles: pd.DataFrame, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = [pa.array(candles.index.as_unit("ms").asi8, type=pa.int64()).cast(_SCHEMA.field("date").type)]
    arrays += [pa.array(candles[c].to_numpy(dtype=np.float64)) for c in CANDLE_COLUMNS]
    schema = _SCHEMA.with_metadata({_META_KEY: json.dumps(doc, separators=(",", ":")).encode()})
    table = pa.Table.from_arrays(arrays, schema=schema)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd", row_group_size=_ROW_GROUP)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
