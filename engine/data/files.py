"""Reading candle files (CSV, gzipped CSV, Feather, Parquet) into the frame contract.

CSV files need a header naming ``date,open,high,low,close,volume`` (extra columns are ignored); a
header-less CSV whose first field is a number is read as Binance's kline dump layout (open time, open,
high, low, close, volume, ...). Dates may be ISO 8601 strings (UTC unless they say otherwise) or epoch
seconds, milliseconds, microseconds or nanoseconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from dsl.errors import Diagnostic
from engine.data.errors import DataError
from engine.data.naming import CANDLE_EXTENSIONS, parse_candle_filename
from engine.data.validate import CANDLE_COLUMNS, validate_candles

__all__ = ["read_candle_file", "read_raw"]


def _extension(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(CANDLE_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    return path.suffix.lower()


def read_raw(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, bool]:
    """The file's table as read, unchecked, and whether it is binary (rows, not lines, in diagnostics)."""
    path = Path(path)
    source = str(path)
    ext = _extension(path)
    if not path.is_file():
        raise DataError.single("DATA014", "no such file", source)
    try:
        if ext in (".csv", ".csv.gz"):
            return _read_csv(path), False
        if ext == ".feather":
            return pd.read_feather(path), True
        if ext == ".parquet":
            return pd.read_parquet(path), True
    except DataError:
        raise
    except Exception as exc:  # parser errors come in many types; all mean "cannot read this file"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError.single("DATA014", f"cannot read {ext[1:]} file: {message}", source) from None
    raise DataError.single(
        "DATA014",
        f"unsupported file type '{ext or path.name}' (supported: {', '.join(CANDLE_EXTENSIONS)})",
        source,
    )


def _read_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    if len(frame.columns) and _is_number(str(frame.columns[0])):
        # No header: Binance dumps (open time, open, high, low, close, volume, close time, ...).
        frame = pd.read_csv(path, header=None)
        if frame.shape[1] < 6:
            raise DataError.single(
                "DATA001",
                f"the file has no header and {frame.shape[1]} columns; expected date,open,high,low,close,volume",
                str(path),
            )
        frame = frame.iloc[:, :6]
        frame.columns = ["date", *CANDLE_COLUMNS]
        frame.attrs["first_line"] = 1
    return frame


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_candle_file(
    path: str | os.PathLike[str], *, timeframe: str | None = None
) -> tuple[pd.DataFrame, list[Diagnostic]]:
    """Read and validate one candle file; warnings and notes are returned, errors raise :class:`DataError`.

    The timeframe, when not given, comes from the file name (``ETH_BTC-5m.csv``) or else from the data.
    """
    path = Path(path)
    raw, binary = read_raw(path)
    if timeframe is None:
        named = parse_candle_filename(path.name)
        timeframe = named.timeframe if named else None
    first_line = 1 if binary else int(raw.attrs.get("first_line", 2))
    return validate_candles(raw, str(path), timeframe=timeframe, first_line=first_line, binary=binary)
