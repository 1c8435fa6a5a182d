"""Checking and cleaning raw candles into the frame contract.

The contract: a ``DataFrame`` indexed by a ``DatetimeIndex`` (``datetime64[ns, UTC]``, name ``date``, the
candle open time), float64 columns ``open, high, low, close, volume``, sorted, without duplicates.

What :func:`validate_candles` does with each kind of problem (documented in docs/data.md):

===========================  ===========  ======================================================
problem                      severity     handling
===========================  ===========  ======================================================
missing columns, bad dates,  error        :class:`DataError` (nothing is guessed)
non-numeric values,
conflicting duplicates,
non-positive prices,
misaligned timestamps
unsorted rows                warning      sorted
exact duplicate rows         warning      dropped
rows with NaN values         warning      dropped
high/low not enclosing       warning      kept unchanged
open/close
zero volume                  note         kept
gaps                         note         reported, never filled
===========================  ===========  ======================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dsl.errors import Diagnostic, did_you_mean
from dsl.timeframes import SUPPORTED_TIMEFRAMES, timeframe_seconds
from engine.data.errors import DataError, issue

__all__ = [
    "CANDLE_COLUMNS",
    "WEEK_ORIGIN_NS",
    "find_gaps",
    "infer_timeframe",
    "timeframe_origin_ns",
    "validate_candles",
    "worst",
]

CANDLE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close")
_TIME_ALIASES = ("date", "timestamp", "time", "datetime", "open_time")
_NS = 1_000_000_000
# Weekly candles start on Monday, as on the exchanges; the Unix epoch was a Thursday.
WEEK_ORIGIN_NS = 4 * 86_400 * _NS
_ROWS_LISTED = 5


def timeframe_origin_ns(timeframe: str) -> int:
    return WEEK_ORIGIN_NS if timeframe == "1w" else 0


def infer_timeframe(index: pd.DatetimeIndex) -> str | None:
    """The most common spacing of ``index`` when it is a supported timeframe, else None."""
    if len(index) < 2:
        return None
    diffs = np.diff(index.as_unit("ns").asi8) // _NS
    values, counts = np.unique(diffs[diffs > 0], return_counts=True)
    if len(values) == 0:
        return None
    step = int(values[np.argmax(counts)])
    for tf in SUPPORTED_TIMEFRAMES:
        if timeframe_seconds(tf) == step:
            return tf
    return None


def find_gaps(index: pd.DatetimeIndex, timeframe: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Missing stretches as (first missing open time, last missing open time), inclusive."""
    step = timeframe_seconds(timeframe) * _NS
    opens = index.as_unit("ns").asi8
    where = np.flatnonzero(np.diff(opens) > step)
    return [
        (pd.Timestamp(int(opens[i]) + step, tz="UTC"), pd.Timestamp(int(opens[i + 1]) - step, tz="UTC"))
        for i in where
    ]


def _count(mask: np.ndarray, noun: str) -> str:
    count = int(mask.sum())
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _rows_text(lines: np.ndarray, what: str = "line") -> str:
    shown = ", ".join(str(int(x)) for x in lines[:_ROWS_LISTED])
    more = f" and {len(lines) - _ROWS_LISTED} more" if len(lines) > _ROWS_LISTED else ""
    plural = "s" if len(lines) > 1 else ""
    return f"{what}{plural} {shown}{more}"


class _Checker:
    """Collects diagnostics for one source; ``lines`` maps frame positions back to source lines."""

    def __init__(self, source: str, first_line: int, binary: bool):
        self.source = source
        self.first_line = first_line
        self.what = "row" if binary else "line"
        self.found: list[Diagnostic] = []

    def add(self, code: str, message: str, lines: np.ndarray | None = None, severity: str = "error") -> None:
        line = int(lines[0]) if lines is not None and len(lines) else 1
        if lines is not None and len(lines):
            message = f"{message} ({_rows_text(lines, self.what)})"
        self.found.append(issue(code, message, self.source, line, severity))

    def fail_if_errors(self) -> None:
        if any(d.severity == "error" for d in self.found):
            raise DataError(self.found)


def _time_column(frame: pd.DataFrame) -> pd.Series:
    if isinstance(frame.index, pd.DatetimeIndex):
        return pd.Series(frame.index, index=frame.index)
    for alias in _TIME_ALIASES:
        if alias in frame.columns:
            return frame[alias]
    raise AssertionError("_check_columns guarantees a time column")


def _parse_times(raw: pd.Series, check: _Checker, lines: np.ndarray) -> np.ndarray:
    """Open times as int64 nanoseconds since the epoch (UTC); bad values are reported as errors."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed = pd.to_datetime(raw, utc=True)
    elif pd.api.types.is_numeric_dtype(raw.dtype):
        numbers = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        # Epoch s, ms, us or ns, told apart by size: any date after 1973 (1e11 ms) has more digits than a
        # date before the year 5138 (1e11 s) in the next-coarser unit.
        size = np.nanmedian(np.abs(numbers)) if np.isfinite(numbers).any() else 0.0
        unit = "ns" if size > 1e17 else "us" if size > 1e14 else "ms" if size > 1e11 else "s"
        parsed = pd.Series(pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce"))
    else:
        parsed = pd.Series(pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601"))
        if parsed.isna().to_numpy().any():
            # Not uniformly ISO 8601: let pandas infer a format per element before giving up.
            retry = pd.Series(pd.to_datetime(raw, utc=True, errors="coerce", format="mixed"))
            parsed = parsed.fillna(retry)
    bad = parsed.isna().to_numpy()
    if bad.any():
        check.add("DATA002", "timestamps that are not dates", lines[bad])
    return pd.DatetimeIndex(parsed).as_unit("ns").asi8


def _numeric(frame: pd.DataFrame, check: _Checker, lines: np.ndarray) -> dict[str, np.ndarray]:
    columns: dict[str, np.ndarray] = {}
    for name in CANDLE_COLUMNS:
        raw = frame[name]
        if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
            columns[name] = raw.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        converted = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(converted) & ~raw.isna().to_numpy()
        if bad.any():
            check.add("DATA003", f"non-numeric values in column '{name}'", lines[bad])
        columns[name] = converted
    return columns


def _check_columns(frame: pd.DataFrame, check: _Checker) -> pd.DataFrame:
    renamed = frame.rename(columns=lambda c: str(c).strip().lstrip("\ufeff").lower())
    missing = [c for c in CANDLE_COLUMNS if c not in renamed.columns]
    has_time = isinstance(renamed.index, pd.DatetimeIndex) or any(a in renamed.columns for a in _TIME_ALIASES)
    if not has_time:
        missing.insert(0, "date")
    if missing:
        found = [str(c) for c in renamed.columns]
        hints = "".join(did_you_mean(m, found) for m in missing[:1])
        check.add(
            "DATA001",
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}{hints}; "
            f"expected date,open,high,low,close,volume (found: {', '.join(found) or 'none'})",
        )
    return renamed


def validate_candles(
    frame: pd.DataFrame,
    source: str,
    *,
    timeframe: str | None = None,
    first_line: int = 2,
    binary: bool = False,
) -> tuple[pd.DataFrame, list[Diagnostic]]:
    """Check raw candles and return them cleaned to the frame contract, with warnings and notes.

    ``source`` names the file in diagnostics; row *i* (0-based) of ``frame`` is reported at line
    ``first_line + i`` (2 for a CSV with a header; pass ``first_line=1, binary=True`` for Parquet/Feather,
    whose diagnostics then say "row"). ``timeframe`` enables alignment and gap checks; when None it is
    inferred from the most common spacing. Raises :class:`DataError` carrying every problem found when
    any of them is an error.
    """
    check = _Checker(source, first_line, binary)
    if len(frame) == 0:
        check.add("DATA013", "no candles")
        check.fail_if_errors()
    frame = _check_columns(frame, check)
    check.fail_if_errors()

    lines = np.arange(len(frame), dtype=np.int64) + first_line
    times = _parse_times(_time_column(frame), check, lines)
    values = _numeric(frame, check, lines)
    check.fail_if_errors()

    nan_rows = np.zeros(len(times), dtype=bool)
    for name in CANDLE_COLUMNS:
        nan_rows |= np.isnan(values[name])
    if nan_rows.any():
        check.add(
            "DATA007", f"{_count(nan_rows, 'row')} with missing values dropped", lines[nan_rows], "warning"
        )
        keep = ~nan_rows
        times, lines = times[keep], lines[keep]
        values = {k: v[keep] for k, v in values.items()}
    if len(times) == 0:
        check.add("DATA013", "no candles left after dropping rows with missing values")
        check.fail_if_errors()

    if np.any(np.diff(times) < 0):
        check.add("DATA006", "rows are not in time order; sorted", severity="warning")
        order = np.argsort(times, kind="stable")
        times, lines = times[order], lines[order]
        values = {k: v[order] for k, v in values.items()}

    times, lines, values = _drop_duplicates(times, lines, values, check)
    _check_values(values, lines, check)
    tf = timeframe or infer_timeframe(pd.DatetimeIndex(times, tz="UTC"))
    if tf is not None:
        _check_spacing(times, lines, tf, check)
    check.fail_if_errors()

    index = pd.DatetimeIndex(times, tz="UTC", name="date").as_unit("ns")
    clean = pd.DataFrame(values, index=index, columns=list(CANDLE_COLUMNS))
    return clean, check.found


def _drop_duplicates(
    times: np.ndarray, lines: np.ndarray, values: dict[str, np.ndarray], check: _Checker
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    same_time = np.r_[False, times[1:] == times[:-1]]
    if not same_time.any():
        return times, lines, values
    same_row = same_time.copy()
    for v in values.values():
        same_row &= np.r_[False, v[1:] == v[:-1]]
    conflicts = same_time & ~same_row
    if conflicts.any():
        first = pd.Timestamp(int(times[np.argmax(conflicts)]), tz="UTC")
        count = int(conflicts.sum())
        check.add(
            "DATA004",
            f"{count} timestamp{' appears' if count == 1 else 's appear'} more than once with different values "
            f"(first: {first})",
            lines[conflicts],
        )
    if same_row.any():
        check.add("DATA005", f"{_count(same_row, 'exact duplicate row')} dropped", lines[same_row], "warning")
    keep = ~same_row
    return times[keep], lines[keep], {k: v[keep] for k, v in values.items()}


def _check_values(values: dict[str, np.ndarray], lines: np.ndarray, check: _Checker) -> None:
    non_positive = np.zeros(len(lines), dtype=bool)
    for name in _PRICES:
        non_positive |= values[name] <= 0
    if non_positive.any():
        check.add(
            "DATA012", f"{_count(non_positive, 'candle')} with a zero or negative price", lines[non_positive]
        )
    negative_volume = values["volume"] < 0
    if negative_volume.any():
        check.add(
            "DATA012", f"{_count(negative_volume, 'candle')} with negative volume", lines[negative_volume]
        )
    o, h, low, c = (values[k] for k in _PRICES)
    inconsistent = (h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (h < low)
    if inconsistent.any():
        check.add(
            "DATA008",
            f"{_count(inconsistent, 'candle')} whose high/low do not enclose open/close (kept as they are)",
            lines[inconsistent],
            "warning",
        )
    zero_volume = values["volume"] == 0
    if zero_volume.any():
        check.add(
            "DATA009", f"{_count(zero_volume, 'candle')} with zero volume (kept)", lines[zero_volume], "note"
        )


def _check_spacing(times: np.ndarray, lines: np.ndarray, timeframe: str, check: _Checker) -> None:
    step = timeframe_seconds(timeframe) * _NS
    misaligned = (times - timeframe_origin_ns(timeframe)) % step != 0
    if misaligned.any():
        actual = infer_timeframe(pd.DatetimeIndex(times, tz="UTC"))
        if actual is not None and timeframe_seconds(actual) < timeframe_seconds(timeframe):
            check.add("DATA018", f"these look like {actual} candles, not {timeframe}", lines[misaligned][:1])
            return
        first = pd.Timestamp(int(times[np.argmax(misaligned)]), tz="UTC")
        check.add(
            "DATA011",
            f"{_count(misaligned, 'open time')} not on a {timeframe} boundary (first: {first}); "
            "candles must be stamped with their UTC open time",
            lines[misaligned],
        )
        return
    diffs = np.diff(times)
    for i in np.flatnonzero(diffs > step):
        missing = int(diffs[i] // step) - 1
        after = pd.Timestamp(int(times[i]), tz="UTC")
        before = pd.Timestamp(int(times[i + 1]), tz="UTC")
        check.add(
            "DATA010",
            f"gap of {missing} candle{'s' if missing > 1 else ''} between {after} and {before}; not filled",
            lines[i + 1 : i + 2],
            "note",
        )


def worst(diagnostics: Sequence[Diagnostic]) -> str | None:
    """The highest severity among ``diagnostics`` (error > warning > note), or None."""
    for level in ("error", "warning", "note"):
        if any(d.severity == level for d in diagnostics):
            return level
    return None
