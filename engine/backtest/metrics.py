"""Performance metrics: pure functions of the closed trades and the equity curve.

Returns are annualised on 365 days (crypto trades every day). Sharpe and Sortino use daily returns
of the equity curve (the last equity of each UTC day; the initial capital before the first), with
no risk-free rate. Ratios that cannot be computed (too little data, no variation) are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "annualised_return",
    "compute_metrics",
    "daily_returns",
    "exposure_ratio",
    "max_drawdown",
    "per_pair_table",
    "profit_factor",
    "sharpe_ratio",
    "sortino_ratio",
]

DAYS_PER_YEAR = 365


def _ns(times: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch, whatever the resolution pandas chose for ``times``."""
    if isinstance(times, pd.Series):
        times = pd.DatetimeIndex(times)
    return times.as_unit("ns").asi8


def _step(equity: pd.Series) -> pd.Timedelta:
    """The candle length: equity points are stamped with the candle's open time."""
    if len(equity) < 2:
        return pd.Timedelta(0)
    return pd.Timedelta(int(np.diff(_ns(equity.index)).min()), unit="ns")


def _span(equity: pd.Series) -> pd.Timedelta:
    return equity.index[-1] - equity.index[0] + _step(equity)


def annualised_return(total_return: float, span: pd.Timedelta) -> float:
    """Compound annual growth rate of ``total_return`` earned over ``span``."""
    years = span / pd.Timedelta(days=DAYS_PER_YEAR)
    if years <= 0 or total_return <= -1:
        return math.nan
    return (1.0 + total_return) ** (1.0 / years) - 1.0


def daily_returns(equity: pd.Series, initial_capital: float) -> pd.Series:
    closes = equity.resample("1D").last().dropna()
    values = np.concatenate([[initial_capital], closes.to_numpy()])
    return pd.Series(values[1:] / values[:-1] - 1.0, index=closes.index)


def sharpe_ratio(returns: pd.Series, periods_per_year: int = DAYS_PER_YEAR) -> float:
    if len(returns) < 2:
        return math.nan
    std = float(returns.std(ddof=1))
    if not std > 0:
        return math.nan
    return float(returns.mean()) / std * math.sqrt(periods_per_year)


def sortino_ratio(returns: pd.Series, periods_per_year: int = DAYS_PER_YEAR) -> float:
    if len(returns) < 2:
        return math.nan
    mean = float(returns.mean())
    downside = math.sqrt(float((np.minimum(returns.to_numpy(), 0.0) ** 2).mean()))
    if downside == 0:
        return math.inf if mean > 0 else math.nan
    return mean / downside * math.sqrt(periods_per_year)


def max_drawdown(equity: pd.Series, initial_capital: float) -> tuple[float, pd.Timedelta]:
    """Largest fall from a peak (ratio of the peak), and the longest time spent below a peak."""
    if equity.empty:
        return 0.0, pd.Timedelta(0)
    values = equity.to_numpy()
    peaks = np.maximum.accumulate(np.maximum(values, initial_capital))
    depth = float(np.max(1.0 - values / peaks))
    at_peak = values >= peaks
    times = _ns(equity.index)
    start = times[0]
    last_peak = pd.Series(np.where(at_peak, times, np.nan)).ffill().fillna(start).to_numpy()
    underwater = int(np.max(times - last_peak)) if len(times) else 0
    return max(depth, 0.0), pd.Timedelta(underwater, unit="ns")


def profit_factor(profits: pd.Series) -> float:
    gains = float(profits[profits > 0].sum())
    losses = -float(profits[profits < 0].sum())
    if losses == 0:
        return math.inf if gains > 0 else math.nan
    return gains / losses


def exposure_ratio(trades: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Share of ``[start, end)`` during which at least one position was open."""
    total = (end - start) // pd.Timedelta(1, unit="ns")
    if trades.empty or total <= 0:
        return 0.0
    spans = sorted(zip(_ns(trades["open_time"]), _ns(trades["close_time"]), strict=True))
    covered = 0
    cur_start, cur_end = spans[0]
    for a, b in spans[1:]:
        if a > cur_end:
            covered += cur_end - cur_start
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    covered += cur_end - cur_start
    return min(covered / total, 1.0)


def compute_metrics(trades: pd.DataFrame, equity: pd.Series, initial_capital: float) -> dict[str, Any]:
    """Every headline number of a backtest, from its closed trades and its equity curve."""
    final = float(equity.iloc[-1]) if len(equity) else initial_capital
    total = final / initial_capital - 1.0
    span = _span(equity) if len(equity) else pd.Timedelta(0)
    annual = annualised_return(total, span)
    depth, underwater = max_drawdown(equity, initial_capital)
    returns = daily_returns(equity, initial_capital) if len(equity) else pd.Series(dtype=float)
    n = len(trades)
    profits = trades["profit_abs"] if n else pd.Series(dtype=float)
    durations = trades["close_time"] - trades["open_time"] if n else pd.Series(dtype="timedelta64[ns]")
    start = equity.index[0] if len(equity) else pd.NaT
    end = equity.index[-1] + _step(equity) if len(equity) else pd.NaT
    return {
        "start": start,
        "end": end,
        "initial_capital": initial_capital,
        "final_equity": final,
        "total_return": total,
        "annualised_return": annual,
        "sharpe": sharpe_ratio(returns),
        "sortino": sortino_ratio(returns),
        "calmar": annual / depth if depth > 0 and not math.isnan(annual) else math.nan,
        "max_drawdown": depth,
        "max_drawdown_duration": underwater,
        "trades": n,
        "win_rate": float((profits > 0).mean()) if n else math.nan,
        "profit_factor": profit_factor(profits) if n else math.nan,
        "expectancy": float(profits.mean()) if n else math.nan,
        "expectancy_ratio": float(trades["profit_ratio"].mean()) if n else math.nan,
        "avg_trade_duration": durations.mean() if n else pd.NaT,
        "exposure": exposure_ratio(trades, start, end) if len(equity) else 0.0,
        "fees_paid": float(trades["fees"].sum()) if n else 0.0,
        "best_trade": float(trades["profit_ratio"].max()) if n else math.nan,
        "worst_trade": float(trades["profit_ratio"].min()) if n else math.nan,
    }


def per_pair_table(trades: pd.DataFrame, pairs: Sequence[str]) -> pd.DataFrame:
    """One row per pair (pairs without trades included): trades, wins, win rate, summed and mean
    profit, average duration, fees."""
    rows = []
    for pair in pairs:
        t = trades[trades["pair"] == pair]
        n = len(t)
        rows.append(
            {
                "pair": pair,
                "trades": n,
                "wins": int((t["profit_abs"] > 0).sum()),
                "win_rate": float((t["profit_abs"] > 0).mean()) if n else math.nan,
                "profit_abs": float(t["profit_abs"].sum()),
                "avg_profit_ratio": float(t["profit_ratio"].mean()) if n else math.nan,
                "avg_duration": (t["close_time"] - t["open_time"]).mean() if n else pd.NaT,
                "fees": float(t["fees"].sum()),
            }
        )
    return pd.DataFrame(rows).set_index("pair")
