"""The dashboard's rows and charts as plain data (no page): the per-currency table, the trade feed,
the alerts and the equity/drawdown line charts, every figure with its unit."""

from __future__ import annotations

from typing import Any

from engine.store.models import Event, Trade
from engine.web import formatting as fmt
from engine.web.queries import Point, downsample
from engine.web.valuation import Valuation

__all__ = [
    "ALERT_COLUMNS",
    "CURRENCY_COLUMNS",
    "TRADE_COLUMNS",
    "alert_row",
    "currency_rows",
    "line_chart",
    "trade_row",
]


def line_chart(
    title: str, points: list[Point], *, unit: str = "", percent: bool = False, color: str = "#2563eb"
) -> dict:
    """ECharts options for one time series."""
    data = [[t.isoformat(), round(v * 100, 4) if percent else v] for t, v in downsample(points)]
    return {
        "title": {"text": title, "textStyle": {"fontSize": 14}},
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 70, "right": 16, "top": 40, "bottom": 30},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value", "scale": True, "name": "%" if percent else unit},
        "series": [
            {
                "type": "line",
                "name": title,
                "showSymbol": False,
                "data": data,
                "lineStyle": {"color": color},
                **({"areaStyle": {"color": color, "opacity": 0.2}} if percent else {}),
            }
        ],
    }


TRADE_COLUMNS = (
    ("pair", "Pair", True),
    ("bot", "Bot", False),
    ("side", "Side", False),
    ("closed", "Closed (UTC)", False),
    ("profit", "Profit", True),
    ("profit_pct", "Profit %", True),
    ("reason", "Exit", False),
)
ALERT_COLUMNS = (
    ("time", "Time (UTC)", True),
    ("bot", "Bot", False),
    ("kind", "Kind", False),
    ("message", "Message", True),
)
CURRENCY_COLUMNS = (
    ("currency", "Currency", True),
    ("bots", "Bots", False),
    ("equity", "Equity", True),
    ("today", "Today", False),
    ("week", "This week", False),
    ("all", "All time", True),
    ("rate", "Rate", False),
)


def trade_row(trade: Trade, names: dict[int, str]) -> dict[str, Any]:
    currency = fmt.quote_currency(trade.pair)
    return {
        "id": trade.id,
        "bot": names.get(trade.bot_id, str(trade.bot_id)),
        "pair": trade.pair,
        "side": str(trade.side),
        "closed": fmt.when(trade.close_time),
        "profit": fmt.money(trade.profit_abs, currency, signed=True),
        "profit_pct": fmt.percent(trade.profit_ratio),
        "tone": fmt.tone(trade.profit_abs),
        "reason": trade.exit_reason,
    }


def alert_row(event: Event, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": fmt.when(event.time),
        "bot": names.get(event.bot_id, "") if event.bot_id is not None else "",
        "kind": f"{event.category}/{event.kind}",
        "message": event.message,
    }


def currency_rows(valuation: Valuation, names: dict[int, str]) -> list[dict[str, Any]]:
    rows = []
    for item in valuation.per_currency:
        c, rate = item.currency, item.rate
        if rate is None:
            rate_text = f"no {c}/{valuation.currency} price"
        elif c == valuation.currency:
            rate_text = "="
        else:
            stale = " (stale)" if rate.stale else ""
            rate_text = f"{fmt.price(rate.value)} {valuation.currency}{stale}, {fmt.when(rate.as_of)} UTC, {rate.source}"
        rows.append(
            {
                "id": c,
                "currency": c,
                "bots": ", ".join(names.get(b, str(b)) for b in item.bots),
                "equity": fmt.money(item.equity, c),
                "today": fmt.money(item.pnl.today, c, signed=True),
                "week": fmt.money(item.pnl.week, c, signed=True),
                "all": fmt.money(item.pnl.all_time, c, signed=True),
                "tone_today": fmt.tone(item.pnl.today),
                "tone_week": fmt.tone(item.pnl.week),
                "tone_all": fmt.tone(item.pnl.all_time),
                "rate": rate_text,
            }
        )
    return rows
