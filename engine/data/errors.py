"""Errors and issue codes of the candle data layer.

Every data problem is a :class:`dsl.errors.Diagnostic` whose span points at the file and the line
(CSV) or 1-based row (Parquet/Feather) concerned, so it prints like any other error of the product:

    data/ETH_BTC-5m.csv:17:1: error[DATA004]: conflicting duplicate candles at 2024-01-01 00:05:00+00:00 ...
"""

from __future__ import annotations

from collections.abc import Sequence

from dsl.errors import Diagnostic, DiagnosticError, Span

__all__ = ["CODES", "DataError", "issue"]

# Stable codes, documented in docs/data.md; never renumber.
CODES: dict[str, str] = {
    "DATA001": "missing or unknown columns",
    "DATA002": "unparseable timestamps",
    "DATA003": "non-numeric values",
    "DATA004": "conflicting duplicate timestamps",
    "DATA005": "exact duplicate rows dropped",
    "DATA006": "rows not sorted by time (sorted)",
    "DATA007": "rows with missing values dropped",
    "DATA008": "inconsistent OHLC values",
    "DATA009": "zero-volume candles",
    "DATA010": "gap in the candle series",
    "DATA011": "timestamps not aligned to the timeframe",
    "DATA012": "negative or zero prices / negative volume",
    "DATA013": "empty data",
    "DATA014": "unreadable file or unsupported format",
    "DATA015": "file or pair name not understood",
    "DATA016": "no stored candles for the request",
    "DATA017": "download failed",
    "DATA018": "timeframe mismatch",
}


def issue(code: str, message: str, source: str, line: int = 1, severity: str = "error") -> Diagnostic:
    """A data diagnostic at ``line`` of ``source`` (a CSV line, or a 1-based row for binary files)."""
    return Diagnostic(code, message, Span.point(source, max(line, 1), 1), severity=severity)


class DataError(DiagnosticError):
    """Candle data that cannot be used; carries every diagnostic found (errors first)."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        ordered = sorted(diagnostics, key=lambda d: d.severity != "error")
        super().__init__(ordered)

    @classmethod
    def single(cls, code: str, message: str, source: str, line: int = 1) -> DataError:
        return cls([issue(code, message, source, line)])
