"""Metrics on hand-made equity curves and trades; the trade CSV export."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from engine.backtest import EXPORT_COLUMNS, compute_metrics, export_trades_csv, per_pair_table
from engine.backtest.metrics import exposure_ratio, max_drawdown, profit_factor, sharpe_ratio, sortino_ratio
from tests.engine.trading.scenario import flat, pair, run

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def curve(values: list[float], step: pd.Timedelta = DAY) -> pd.Series:
    index = pd.DatetimeIndex([T0 + k * step for k in range(len(values))], name="date")
    return pd.Series(values, index=index, dtype=float)


def trades(rows: list[tuple[str, int, int, float, float]]) -> pd.DataFrame:
    """(pair, open day, close day, profit_abs, profit_ratio)"""
    return pd.DataFrame(
        {
            "pair": [r[0] for r in rows],
            "open_time": [T0 + r[1] * DAY for r in rows],
            "close_time": [T0 + r[2] * DAY for r in rows],
            "profit_abs": [r[3] for r in rows],
            "profit_ratio": [r[4] for r in rows],
            "fees": [1.0] * len(rows),
        }
    )


def test_max_drawdown_depth_and_duration():
    depth, duration = max_drawdown(curve([100, 120, 90, 110, 125, 100]), 100.0)
    assert depth == pytest.approx(0.25)  # 120 -> 90
    assert duration == 2 * DAY  # below 120 on days 2 and 3, new high on day 4
    depth, duration = max_drawdown(curve([95, 90, 99]), 100.0)
    assert depth == pytest.approx(0.10) and duration == 2 * DAY  # below the initial capital throughout


def test_ratios():
    r = pd.Series([0.01, -0.02, 0.03, 0.0])
    assert sharpe_ratio(r) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365))
    downside = math.sqrt((0.02**2) / 4)
    assert sortino_ratio(r) == pytest.approx(r.mean() / downside * math.sqrt(365))
    assert math.isnan(sharpe_ratio(pd.Series([0.01])))
    assert profit_factor(pd.Series([10.0, -5.0, 5.0])) == pytest.approx(3.0)
    assert profit_factor(pd.Series([1.0])) == math.inf


def test_exposure_merges_overlapping_trades():
    t = trades([("A", 0, 2, 1, 0.1), ("B", 1, 3, 1, 0.1), ("A", 5, 6, 1, 0.1)])
    assert exposure_ratio(t, T0, T0 + 10 * DAY) == pytest.approx(0.4)


def test_compute_metrics_headline_numbers():
    eq = curve([1000, 1100, 1050, 1210])
    t = trades([("A", 0, 1, 100.0, 0.1), ("B", 1, 2, -50.0, -0.05), ("A", 2, 3, 160.0, 0.16)])
    m = compute_metrics(t, eq, 1000.0)
    assert m["total_return"] == pytest.approx(0.21)
    assert m["annualised_return"] == pytest.approx(1.21 ** (365 / 4) - 1)
    assert m["trades"] == 3 and m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(260 / 50)
    assert m["expectancy"] == pytest.approx(70.0) and m["expectancy_ratio"] == pytest.approx(0.07)
    assert m["avg_trade_duration"] == DAY
    assert m["exposure"] == pytest.approx(0.75)
    assert m["fees_paid"] == 3.0
    assert m["max_drawdown"] == pytest.approx(50 / 1100)
    assert m["calmar"] == pytest.approx(m["annualised_return"] / m["max_drawdown"])
    daily = np.array([1100 / 1000, 1050 / 1100, 1210 / 1050]) - 1
    daily = np.concatenate([[0.0], daily])  # day 0 closes at the initial capital
    assert m["sharpe"] == pytest.approx(daily.mean() / daily.std(ddof=1) * math.sqrt(365))
    table = per_pair_table(t, ["A", "B", "C"])
    assert table.loc["A", "trades"] == 2 and table.loc["A", "profit_abs"] == pytest.approx(260.0)
    assert table.loc["C", "trades"] == 0


def test_metrics_without_trades():
    m = compute_metrics(trades([]), curve([1000, 1000]), 1000.0)
    assert m["trades"] == 0 and m["total_return"] == 0 and math.isnan(m["win_rate"]) and m["exposure"] == 0


def test_export_has_the_documented_columns_and_utc_iso_times():
    result = run(pair(flat(5), entry_long=[0], exit_long=[2]))
    buffer = io.StringIO()
    export_trades_csv(result.trades, buffer)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == ",".join(EXPORT_COLUMNS)
    assert lines[1] == "A/USDT,2024-01-01T01:00:00Z,2024-01-01T03:00:00Z,100.0,100.0,10.0,0.0,0.0,exit_signal"
    back = pd.read_csv(io.StringIO(buffer.getvalue()))
    assert list(back.columns) == list(EXPORT_COLUMNS) and len(back) == 1


def test_backtest_equity_curve_is_per_step_and_marks_to_market():
    result = run(pair([*flat(2), (100, 110, 100, 110), (110, 120, 110, 120)], entry_long=[0]))
    assert list(result.equity) == pytest.approx([1000, 1000, 1100, 1200])
    assert result.equity.index[0] == T0 and str(result.equity.index.tz) == "UTC"
    assert result.metrics["total_return"] == pytest.approx(0.2)
