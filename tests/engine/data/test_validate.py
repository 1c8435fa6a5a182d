from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.data.errors import DataError
from engine.data.validate import find_gaps, infer_timeframe, validate_candles


def raw(rows: int = 6, start: str = "2024-01-01T00:00:00Z", minutes: int = 5) -> pd.DataFrame:
    """A CSV-like frame: string dates, float columns, line N+2 is row N."""
    dates = pd.date_range(start, periods=rows, freq=f"{minutes}min", tz="UTC")
    close = np.linspace(100, 105, rows)
    return pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": close - 0.5,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": np.arange(1, rows + 1, dtype=float),
        }
    )


def codes(diagnostics) -> list[str]:
    return [d.code for d in diagnostics]


def errors_of(frame: pd.DataFrame, **kwargs) -> DataError:
    with pytest.raises(DataError) as caught:
        validate_candles(frame, "x.csv", **kwargs)
    return caught.value


def test_clean_frame_follows_the_contract():
    clean, found = validate_candles(raw(), "x.csv", timeframe="5m")
    assert found == []
    assert list(clean.columns) == ["open", "high", "low", "close", "volume"]
    assert str(clean.index.dtype) == "datetime64[ns, UTC]"
    assert clean.index.name == "date"
    assert all(clean[c].dtype == np.float64 for c in clean.columns)
    assert clean.index[1] - clean.index[0] == pd.Timedelta("5min")


def test_missing_columns_are_an_error_with_a_hint():
    frame = raw().rename(columns={"volume": "volumen"}).drop(columns=["high"])
    error = errors_of(frame)
    [diag] = error.diagnostics
    assert diag.code == "DATA001"
    assert "high, volume" in diag.message
    assert "did you mean 'volumen'" not in diag.message  # only the first missing name gets a hint
    assert "found: date, open, low, close, volumen" in diag.message
    assert diag.headline().startswith("x.csv:1:1: error[DATA001]")


def test_unparseable_dates_point_at_their_lines():
    frame = raw()
    frame.loc[2, "date"] = "yesterday"
    [diag] = errors_of(frame).diagnostics
    assert diag.code == "DATA002"
    assert diag.span.line == 4  # header is line 1, row 0 is line 2
    assert "line 4" in diag.message


def test_non_numeric_values_are_an_error():
    frame = raw().astype({"close": object})
    frame.loc[3, "close"] = "n/a?"
    [diag] = errors_of(frame).diagnostics
    assert diag.code == "DATA003"
    assert "'close'" in diag.message
    assert diag.span.line == 5


def test_nan_rows_are_dropped_with_a_warning():
    frame = raw()
    frame.loc[1, "volume"] = np.nan
    frame.loc[4, "open"] = np.nan
    clean, found = validate_candles(frame, "x.csv", timeframe="5m")
    assert len(clean) == 4
    nan = next(d for d in found if d.code == "DATA007")
    assert nan.severity == "warning"
    assert "lines 3, 6" in nan.message
    # Dropping them leaves holes, which are reported as gaps, never filled.
    assert codes(found).count("DATA010") == 2


def test_unsorted_rows_are_sorted():
    frame = raw().iloc[[0, 2, 1, 3, 5, 4]]
    clean, found = validate_candles(frame, "x.csv", timeframe="5m")
    assert clean.index.is_monotonic_increasing
    assert codes(found) == ["DATA006"]
    assert clean["volume"].tolist() == [1, 2, 3, 4, 5, 6]


def test_exact_duplicates_are_dropped():
    frame = pd.concat([raw(), raw().iloc[[2, 4]]], ignore_index=True)
    clean, found = validate_candles(frame, "x.csv", timeframe="5m")
    assert len(clean) == 6
    assert codes(found) == ["DATA006", "DATA005"]  # appended at the end, so also out of order
    dup = found[1]
    assert dup.severity == "warning"
    assert "2 exact duplicate rows" in dup.message


def test_conflicting_duplicates_are_an_error():
    extra = raw().iloc[[3]].copy()
    extra["close"] += 1
    diag = errors_of(pd.concat([raw(), extra], ignore_index=True)).diagnostics[0]
    assert diag.code == "DATA004"
    assert "2024-01-01 00:15:00+00:00" in diag.message
    assert diag.span.line == 8


def test_ohlc_inconsistency_is_reported_and_kept():
    frame = raw()
    frame.loc[2, "high"] = frame.loc[2, "close"] - 0.1
    clean, found = validate_candles(frame, "x.csv", timeframe="5m")
    assert codes(found) == ["DATA008"]
    assert found[0].span.line == 4
    assert clean["high"].iloc[2] == frame.loc[2, "high"]


def test_zero_volume_is_allowed_and_flagged():
    frame = raw()
    frame.loc[0, "volume"] = 0.0
    clean, found = validate_candles(frame, "x.csv", timeframe="5m")
    assert len(clean) == 6
    assert [(d.code, d.severity) for d in found] == [("DATA009", "note")]


def test_non_positive_prices_are_an_error():
    frame = raw()
    frame.loc[5, "low"] = 0.0
    [diag] = errors_of(frame).diagnostics
    assert diag.code == "DATA012"


def test_gaps_are_reported_not_filled():
    frame = raw(10).drop(index=[3, 4, 5])
    clean, found = validate_candles(frame, "x.csv", timeframe="5m")
    assert len(clean) == 7
    [gap] = found
    assert gap.code == "DATA010" and gap.severity == "note"
    assert "gap of 3 candles between 2024-01-01 00:10:00+00:00 and 2024-01-01 00:30:00+00:00" in gap.message
    assert gap.span.line == 5  # the first candle after the hole (the file has no lines for missing rows)
    assert find_gaps(clean.index, "5m") == [
        (pd.Timestamp("2024-01-01 00:15", tz="UTC"), pd.Timestamp("2024-01-01 00:25", tz="UTC"))
    ]


def test_misaligned_timestamps_are_an_error():
    frame = raw(start="2024-01-01T00:01:00Z")
    [diag] = errors_of(frame, timeframe="5m").diagnostics
    assert diag.code == "DATA011"
    assert "5m boundary" in diag.message


def test_wrong_timeframe_is_detected():
    [diag] = errors_of(raw(minutes=5), timeframe="15m").diagnostics
    assert diag.code == "DATA018"
    assert "5m candles, not 15m" in diag.message


def test_every_problem_is_reported_at_once():
    frame = raw()
    frame.loc[1, "date"] = "bad"
    frame = frame.astype({"open": object})
    frame.loc[2, "open"] = "x"
    assert codes(errors_of(frame).diagnostics) == ["DATA002", "DATA003"]


def test_empty_input_is_an_error():
    assert codes(errors_of(raw().iloc[:0]).diagnostics) == ["DATA013"]


def test_epoch_milliseconds_and_a_datetime_index_are_accepted():
    frame = raw()
    ms = pd.to_datetime(frame["date"], utc=True).astype("int64") // 1_000_000
    clean_ms, _ = validate_candles(frame.assign(date=ms), "x.csv")
    indexed = frame.assign(date=pd.to_datetime(frame["date"])).set_index("date")
    clean_ix, _ = validate_candles(indexed, "x.parquet", binary=True, first_line=1)
    clean_ref, _ = validate_candles(frame, "x.csv")
    pd.testing.assert_frame_equal(clean_ms, clean_ref)
    pd.testing.assert_frame_equal(clean_ix, clean_ref)


def test_columns_are_matched_case_insensitively_and_extras_ignored():
    frame = raw().rename(columns=str.upper).assign(TRADES=1)
    clean, _ = validate_candles(frame, "x.csv")
    assert list(clean.columns) == ["open", "high", "low", "close", "volume"]


def test_binary_sources_say_row():
    frame = raw()
    frame.loc[2, "volume"] = np.nan
    _, found = validate_candles(frame, "x.parquet", timeframe="5m", first_line=1, binary=True)
    assert "row 3" in found[0].message


def test_infer_timeframe():
    assert infer_timeframe(pd.date_range("2024", periods=10, freq="15min", tz="UTC")) == "15m"
    assert infer_timeframe(pd.date_range("2024", periods=10, freq="7min", tz="UTC")) is None
    assert infer_timeframe(pd.date_range("2024", periods=1, freq="1h", tz="UTC")) is None
