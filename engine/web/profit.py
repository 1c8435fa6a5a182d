"""Realised profit per day and its running total, for a bot (in its own currency) or the portfolio
(each trade converted to the valuation currency at the rate known when it closed), and the chart of
both: daily bars, green for a gain and red for a loss, under the cumulative line (pure).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from engine.web.formatting import quote_currency
from engine.web.valuation import PriceSeries, Rate, rate_at

__all__ = ["DailyProfit", "cumulative", "daily_profit", "profit_chart"]

DailyProfit = list[tuple[date, float]]
GAIN, LOSS = "#16a34a", "#dc2626"


def daily_profit(
    trades: Iterable[tuple[datetime, float, str]],
    valuation: str,
    prices: Mapping[str, PriceSeries] | None = None,
    latest: Mapping[str, Rate] | None = None,
) -> tuple[DailyProfit, int]:
    """Per UTC day (of the close), the sum of the trades' profit ``(close time, profit, pair)`` in
    ``valuation``, oldest first; and how many trades were left out for want of a rate."""
    prices, latest = prices or {}, latest or {}
    days: dict[date, float] = {}
    left_out = 0
    for closed, profit, pair in trades:
        currency = quote_currency(pair)
        if currency == valuation:
            rate = 1.0
        else:
            series = prices.get(currency)
            found = rate_at(series, closed) if series is not None else None
            found = found or latest.get(currency)
            if found is None:
                left_out += 1
                continue
            rate = found.value
        day = closed.date()
        days[day] = days.get(day, 0.0) + float(profit) * rate
    return sorted(days.items()), left_out


def cumulative(days: DailyProfit) -> DailyProfit:
    out: DailyProfit = []
    total = 0.0
    for day, value in days:
        total += value
        out.append((day, total))
    return out


def profit_chart(days: DailyProfit, unit: str, title: str = "Realised profit") -> dict[str, Any]:
    """ECharts options: a bar per day (left axis) and the running total (right axis), in ``unit``."""
    labels = [f"{day:%Y-%m-%d}" for day, _ in days]
    bars = [{"value": round(v, 10), "itemStyle": {"color": GAIN if v >= 0 else LOSS}} for _, v in days]
    running = [round(v, 10) for _, v in cumulative(days)]
    return {
        "title": {"text": f"{title} ({unit})", "left": 0, "textStyle": {"fontSize": 14}},
        "tooltip": {"trigger": "axis"},
        "legend": {"bottom": 0, "data": ["per day", "cumulative"]},  # clear of a long title on a phone
        "grid": {"left": 70, "right": 70, "top": 40, "bottom": 55},
        "xAxis": {"type": "category", "data": labels},
        # The unit is in the title: axis names would collide with it on a phone.
        "yAxis": [  # both from zero: a bar's height is the day's profit
            {"type": "value"},
            {"type": "value", "splitLine": {"show": False}},
        ],
        "series": [
            {"type": "bar", "name": "per day", "data": bars, "yAxisIndex": 0, "barMaxWidth": 32},
            {
                "type": "line",
                "name": "cumulative",
                "data": running,
                "yAxisIndex": 1,
                "showSymbol": len(days) < 40,
                "lineStyle": {"color": "#2563eb"},
                "itemStyle": {"color": "#2563eb"},
            },
        ],
    }
