"""A user's own series from a CSV or Parquet file.

Columns: ``time`` (ISO 8601 or unix seconds/milliseconds, UTC unless the text says otherwise), an
optional ``available_at`` (same forms; when absent each value counts as known at ``time`` plus the
feed's ``lag``), and value columns. Rows with a missing or malformed time or value are skipped and
counted, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.feeds.http import BadResponse
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources.base import FetchRequest, SourceSetup

__all__ = ["FileSource", "ImportedSeries", "build", "read_series_file"]


@dataclass(frozen=True, slots=True)
class ImportedSeries:
    observations: list[Observation]
    columns: tuple[str, ...]
    skipped: int


def _times(column: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        numbers = pd.to_numeric(column, errors="coerce")
        # Unix milliseconds are > 1e11 for any date after 1973; seconds are below until 5138.
        unit = "ms" if numbers.dropna().abs().median() > 1e11 else "s"
        return pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce")
    parsed = pd.to_datetime(column, utc=True, errors="coerce", format="mixed")
    if parsed.isna().all() and len(column):
        raise ValueError(f"column '{name}' holds no readable times (ISO 8601 or unix seconds/ms)")
    return parsed


def read_series_file(
    path: Path, feed: str, *, columns: tuple[str, ...] | None = None, lag_s: float = 0.0, source: str = "file"
) -> ImportedSeries:
    """The observations in ``path`` for ``feed.<column>``; raises ValueError with a clear message."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        frame = pd.read_parquet(path) if suffix in (".parquet", ".pq") else pd.read_csv(path)
    except Exception as exc:
        raise ValueError(
            f"{path}: cannot read it as {'Parquet' if suffix in ('.parquet', '.pq') else 'CSV'}: {exc}"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if "time" not in frame.columns:
        raise ValueError(f"{path}: needs a 'time' column (found: {', '.join(frame.columns)})")
    value_columns = tuple(c for c in frame.columns if c not in ("time", "available_at"))
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: declared column(s) {', '.join(missing)} not in the file")
        value_columns = columns
    if not value_columns:
        raise ValueError(f"{path}: no value columns besides time/available_at")
    times = _times(frame["time"], "time")
    lag_ns = int(lag_s * NS_PER_SECOND)
    if "available_at" in frame.columns:
        # An empty cell means "no better knowledge": the time plus the lag, like a file without the column.
        available = _times(frame["available_at"], "available_at").fillna(times + pd.Timedelta(lag_ns, "ns"))
    else:
        available = times + pd.Timedelta(lag_ns, "ns")
    event_ns = times.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    avail_ns = available.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    bad_time = times.isna().to_numpy() | available.isna().to_numpy()
    observations: list[Observation] = []
    skipped = 0
    for column in value_columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        ok = ~bad_time & np.isfinite(values) & (avail_ns >= event_ns)
        skipped += int((~ok).sum())
        series = f"{feed}.{column}"
        observations.extend(
            Observation(series, int(e), int(a), float(v), source)
            for e, a, v in zip(event_ns[ok], avail_ns[ok], values[ok], strict=True)
        )
    return ImportedSeries(observations, value_columns, skipped)


class FileSource:
    kind = "file"

    def __init__(self, root: Path):
        self.root = root

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        model = request.feed.model
        path = Path(model.path or "")
        if not path.is_absolute():
            path = self.root / path
        try:
            imported = read_series_file(
                path, request.feed.name, columns=tuple(model.columns or ()) or None, lag_s=request.feed.lag_s
            )
        except ValueError as exc:
            raise BadResponse("file", str(exc)) from None
        return imported.observations

    async def aclose(self) -> None:
        return None


def build(setup: SourceSetup) -> FileSource:
    return FileSource(Path(setup.root))
