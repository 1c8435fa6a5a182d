"""A directory of candle files, as given to ``engine backtest --data DIR``.

Files are named ``<BASE>_<QUOTE>-<timeframe>.<ext>`` for spot pairs and
``<BASE>_<QUOTE>_<SETTLE>-<timeframe>-futures.<ext>`` for perpetual futures (``XRP_USDT_USDT-5m-futures.csv``
holds XRP/USDT:USDT), with ext one of csv, csv.gz, feather, parquet. Files in ``DIR`` and ``DIR/futures``
are found; other names are listed in :attr:`DataDirectory.skipped` and otherwise ignored. Each file is read
and validated on first use and cached; a timeframe without a file is resampled from the finest lower one
that divides it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dsl.errors import Diagnostic, did_you_mean
from dsl.timeframes import SUPPORTED_TIMEFRAMES, timeframe_seconds
from engine.data._frames import as_utc, slice_frame
from engine.data.errors import DataError, issue
from engine.data.files import read_candle_file
from engine.data.naming import CANDLE_EXTENSIONS, normalize_pair, parse_candle_filename
from engine.data.resample import resample_candles, source_timeframe_for

__all__ = ["DataDirectory", "DataFile"]

# When one series exists in several formats, the fastest to read wins.
_PREFERENCE = {".parquet": 0, ".feather": 1, ".csv": 2, ".csv.gz": 3}


@dataclass(frozen=True, slots=True)
class DataFile:
    pair: str
    timeframe: str
    path: Path


class DataDirectory:
    """Read-only candle source over a directory of files (see the module docstring for names)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError.single("DATA014", "data directory not found", str(self.root))
        self.files: dict[tuple[str, str], DataFile] = {}
        self.skipped: list[Path] = []
        self._cache: dict[tuple[str, str], pd.DataFrame] = {}
        self._diagnostics: dict[tuple[str, str], list[Diagnostic]] = {}
        for folder in (self.root, self.root / "futures"):
            if folder.is_dir():
                self._scan(folder)

    def _scan(self, folder: Path) -> None:
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            named = parse_candle_filename(path.name)
            if named is None:
                if any(path.name.lower().endswith(ext) for ext in CANDLE_EXTENSIONS):
                    self.skipped.append(path)
                continue
            key = (named.pair, named.timeframe)
            current = self.files.get(key)
            if current is None or _PREFERENCE[named.ext] < _PREFERENCE[_ext(current.path)]:
                self.files[key] = DataFile(named.pair, named.timeframe, path)

    def pairs(self) -> list[str]:
        return sorted({pair for pair, _ in self.files})

    def timeframes(self, pair: str) -> list[str]:
        pair = normalize_pair(pair)
        return [tf for tf in SUPPORTED_TIMEFRAMES if (pair, tf) in self.files]

    def diagnostics(self, pair: str, timeframe: str) -> list[Diagnostic]:
        """Warnings and notes from validating the file behind (pair, timeframe), once it has been loaded."""
        return list(self._diagnostics.get((normalize_pair(pair), timeframe), []))

    def load(self, pair: str, timeframe: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        """Candles with open time in [start, end), resampled when only a lower timeframe has a file."""
        pair = normalize_pair(pair)
        timeframe_seconds(timeframe)
        start, end = as_utc(start), as_utc(end)
        if (pair, timeframe) in self.files:
            return slice_frame(self._read(pair, timeframe), start, end)
        lower = source_timeframe_for(timeframe, self.timeframes(pair))
        if lower is None:
            raise DataError([self._missing(pair, timeframe)])
        key = (pair, timeframe)
        if key not in self._cache:
            self._cache[key] = resample_candles(self._read(pair, lower), lower, timeframe)
        return slice_frame(self._cache[key], start, end)

    def _read(self, pair: str, timeframe: str) -> pd.DataFrame:
        key = (pair, timeframe)
        if key not in self._cache:
            frame, found = read_candle_file(self.files[key].path, timeframe=timeframe)
            self._cache[key] = frame
            self._diagnostics[key] = found
        return self._cache[key]

    def _missing(self, pair: str, timeframe: str) -> Diagnostic:
        stored = self.timeframes(pair)
        if stored:
            detail = f"files exist for {', '.join(stored)}, none of which divides {timeframe}"
        else:
            names = self.pairs()
            detail = (
                f"no file for this pair{did_you_mean(pair, names)} (pairs here: {', '.join(names) or 'none'})"
            )
        step = "futures" if ":" in pair else "spot"
        return issue(
            "DATA016", f"no {timeframe} candles for {pair} ({step}) in {self.root}: {detail}", str(self.root)
        )


def _ext(path: Path) -> str:
    return ".csv.gz" if path.name.lower().endswith(".csv.gz") else path.suffix.lower()
