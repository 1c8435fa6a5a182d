"""One self-contained HTML file per backtest: metadata, metrics, equity and drawdown, monthly returns,
per-pair results, candle charts with every entry and exit, blocked entries and the trade list.

Everything is inline (CSS, SVG, a few lines of JavaScript for the pair tabs), so the file opens
offline and can be mailed around. Every user-supplied text goes through :func:`html.escape`.

    from engine.backtest.report import write_report
    write_report(run, "report.html")        # run: engine.backtest.session.BacktestRun
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.backtest._svg import Marker, candle_chart, equity_chart, is_price_scale
from engine.backtest.summary import compact_duration

__all__ = ["MAX_TRADE_ROWS", "monthly_returns", "render_report", "write_report"]

MAX_TRADE_ROWS = 5000  # beyond this the trade list is cut (the CSV export has them all)
MAX_PANELS = 6  # feature panels under each candle chart

_METRICS: tuple[tuple[str, str, str], ...] = (
    # (key, label, format)
    ("total_return", "Total return", "pct"),
    ("annualised_return", "Annualised return", "pct"),
    ("final_equity", "Final equity", "money"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("calmar", "Calmar", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_duration", "Max drawdown duration", "duration"),
    ("trades", "Trades", "int"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "ratio"),
    ("expectancy", "Expectancy per trade", "money"),
    ("expectancy_ratio", "Expectancy per trade (ratio)", "pct"),
    ("exposure", "Exposure", "pct"),
    ("avg_trade_duration", "Average trade duration", "duration"),
    ("fees_paid", "Fees paid", "money"),
    ("best_trade", "Best trade", "pct"),
    ("worst_trade", "Worst trade", "pct"),
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: Any, kind: str, currency: str = "") -> str:
    if _missing(value):
        return "–"
    if kind == "pct":
        return f"{float(value):+.2%}" if float(value) != 0 else "0.00%"
    if kind == "money":
        return f"{float(value):.6g} {currency}".strip()
    if kind == "ratio":
        return "∞" if math.isinf(float(value)) and value > 0 else f"{float(value):.2f}"
    if kind == "duration":
        return compact_duration(pd.Timedelta(value))
    if kind == "int":
        return str(int(value))
    if kind == "time":
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")
    if kind == "price":
        return f"{float(value):.8g}"
    return escape(str(value))


def _sign(value: Any) -> str:
    if _missing(value) or float(value) == 0:
        return ""
    return "pos" if float(value) > 0 else "neg"


def monthly_returns(equity: pd.Series, initial_capital: float) -> pd.Series:
    """Return of each calendar month (UTC), from the equity at the end of the month before (the initial
    capital for the first month). Compounded, they give the run's total return."""
    if equity.empty:
        return pd.Series(dtype=np.float64)
    closes = equity.resample("MS").last().ffill()
    previous = closes.shift(1)
    previous.iloc[0] = initial_capital
    return (closes / previous - 1.0).rename("return")


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """``rows`` hold ready-made cell HTML (already escaped)."""
    thead = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f'<table class="{cls}"><thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>'


def _td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>"


def _header(run: Any) -> str:
    bot, strategy = run.bot.model, run.bot.strategy
    badge = '<span class="badge">SYNTHETIC DATA</span>' if run.synthetic else ""
    params = ", ".join(f"{escape(str(k))} = {escape(str(v))}" for k, v in strategy.inputs.items()) or "–"
    candles = sum(len(frame) for frame in run.candles.values())
    facts = [
        ("Bot", f"{escape(bot.bot)} <span class='muted'>({escape(str(run.bot.file))})</span>"),
        (
            "Strategy",
            f"{escape(strategy.model.strategy)} <span class='muted'>({escape(str(strategy.file))})</span>",
        ),
        ("Params", params),
        ("Exchange", f"{escape(bot.exchange.name)} · {escape(bot.exchange.market)}"),
        ("Pairs", escape(", ".join(run.candles))),
        ("Timeframe", escape(run.timeframe)),
        ("Data", f"{_fmt(run.start, 'time')} → {_fmt(run.end, 'time')} UTC · {candles:,} candles"),
    ]
    descriptions = [d for d in (bot.description, strategy.model.description) if d]
    text = "".join(f"<p class='desc'>{escape(d)}</p>" for d in descriptions)
    grid = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return f"<header><h1>{escape(bot.bot)} {badge}</h1>{text}<dl class='meta'>{grid}</dl></header>"


def _metrics(metrics: Mapping[str, Any], currency: str) -> str:
    cards = []
    for key, label, kind in _METRICS:
        value = metrics.get(key)
        tone = _sign(value) if key in ("total_return", "annualised_return", "expectancy") else ""
        cards.append(
            f'<div class="card"><div class="k">{label}</div><div class="v {tone}">{_fmt(value, kind, currency)}</div></div>'
        )
    return f'<section><h2>Metrics</h2><div class="cards">{"".join(cards)}</div></section>'


def _monthly(equity: pd.Series, initial_capital: float) -> str:
    returns = monthly_returns(equity, initial_capital)
    if returns.empty:
        return ""
    rows = []
    for year, group in returns.groupby(returns.index.year):
        by_month = {stamp.month: value for stamp, value in group.items()}
        cells = [_td(str(year), "year")]
        for month in range(1, 13):
            value = by_month.get(month)
            if value is None:
                cells.append(_td(""))
            else:
                cells.append(f'<td class="m {_sign(value)}" data-r="{value!r}">{_fmt(value, "pct")}</td>')
        total = float(np.prod(1.0 + group.to_numpy()) - 1.0)
        cells.append(_td(_fmt(total, "pct"), f"total {_sign(total)}"))
        rows.append(cells)
    table = _table(["Year", *_MONTHS, "Year"], rows, "monthly")
    return f"<section><h2>Monthly returns</h2>{table}</section>"


def _per_pair(per_pair: pd.DataFrame, currency: str) -> str:
    if per_pair.empty:
        return ""
    rows = []
    for pair, r in zip(per_pair.index, per_pair.to_dict("records"), strict=True):
        rows.append(
            [
                _td(escape(str(pair))),
                _td(_fmt(r["trades"], "int"), "num"),
                _td(_fmt(r["wins"], "int"), "num"),
                _td(_fmt(r["win_rate"], "pct"), "num"),
                _td(_fmt(r["profit_abs"], "money", currency), f"num {_sign(r['profit_abs'])}"),
                _td(_fmt(r["avg_profit_ratio"], "pct"), f"num {_sign(r['avg_profit_ratio'])}"),
                _td(_fmt(r["avg_duration"], "duration"), "num"),
                _td(_fmt(r["fees"], "money", currency), "num"),
            ]
        )
    head = ["Pair", "Trades", "Wins", "Win rate", "Profit", "Avg profit", "Avg duration", "Fees"]
    return f"<section><h2>Per pair</h2>{_table(head, rows)}</section>"


def _markers(trades: pd.DataFrame) -> list[Marker]:
    out: list[Marker] = []
    if trades.empty:
        return out
    opens = trades["open_time"].dt.as_unit("ns").astype("int64").to_numpy()
    closes = trades["close_time"].dt.as_unit("ns").astype("int64").to_numpy()
    for i, (side, op, cp, ratio, reason) in enumerate(
        zip(
            trades["side"].tolist(),
            trades["open_price"].tolist(),
            trades["close_price"].tolist(),
            trades["profit_ratio"].tolist(),
            trades["exit_reason"].tolist(),
            strict=True,
        )
    ):
        win = ratio > 0
        opened = pd.Timestamp(int(opens[i]), tz="UTC").strftime("%Y-%m-%d %H:%M")
        closed = pd.Timestamp(int(closes[i]), tz="UTC").strftime("%Y-%m-%d %H:%M")
        out.append(
            Marker(int(opens[i]), op, "entry", side, win, f"{side} entry (entry_{side}) {opened} @ {op:.8g}")
        )
        out.append(
            Marker(
                int(closes[i]),
                cp,
                "exit",
                side,
                win,
                f"{side} exit: {reason} {closed} @ {cp:.8g} ({ratio:+.2%})",
            )
        )
    return out


def _features(signals: pd.DataFrame | None, close: np.ndarray) -> tuple[list, list]:
    """The strategy's numeric features split into price-scale overlays and separate panels."""
    overlays: list[tuple[str, np.ndarray]] = []
    panels: list[tuple[str, np.ndarray]] = []
    if signals is None:
        return overlays, panels
    for column in signals.columns:
        if not str(column).startswith("feature:"):
            continue
        series = signals[column]
        if series.dtype == bool or not pd.api.types.is_numeric_dtype(series.dtype):
            continue  # conditions are shown through the trades they cause
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        name = str(column).removeprefix("feature:")
        (overlays if is_price_scale(values, close) else panels).append((name, values))
    return overlays, panels[:MAX_PANELS]


def _charts(run: Any) -> str:
    trades = run.result.trades
    tabs, charts = [], []
    for i, (pair, candles) in enumerate(run.candles.items()):
        close = candles["close"].to_numpy(dtype=np.float64)
        overlays, panels = _features(run.signals.get(pair), close)
        pair_trades = trades[trades["pair"] == pair] if len(trades) else trades
        svg = candle_chart(candles, overlays, panels, _markers(pair_trades))
        active = " active" if i == 0 else ""
        tabs.append(f'<button class="tab{active}" data-tab="{i}">{escape(pair)}</button>')
        charts.append(
            f'<div class="pane{active}" data-pane="{i}"><h3>{escape(pair)} '
            f'<span class="muted">{len(pair_trades)} trades</span></h3><div class="scroll">{svg}</div></div>'
        )
    return f'<section><h2>Charts</h2><div class="tabs">{"".join(tabs)}</div>{"".join(charts)}</section>'


def _blocked(blocked: pd.DataFrame) -> str:
    if blocked.empty:
        return "<section><h2>Blocked entries</h2><p class='muted'>none: every entry signal was taken</p></section>"
    counts = blocked.groupby(["reason", "pair"]).size().unstack(fill_value=0)
    pairs = [str(p) for p in counts.columns]
    rows = []
    for reason, row in counts.iterrows():
        cells = [_td(escape(str(reason)))]
        cells += [_td(str(int(v)), "num") for v in row.tolist()]
        cells.append(_td(str(int(row.sum())), "num total"))
        rows.append(cells)
    table = _table(["Reason", *(escape(p) for p in pairs), "Total"], rows)
    return f"<section><h2>Blocked entries</h2><p class='muted'>entry signals the risk manager refused</p>{table}</section>"


def _trade_list(trades: pd.DataFrame, currency: str) -> str:
    if trades.empty:
        return "<section><h2>Trades</h2><p class='muted'>no trades</p></section>"
    shown = trades.iloc[:MAX_TRADE_ROWS]
    columns = (
        shown[c].tolist() for c in ("pair", "side", "open_time", "close_time", "open_price", "close_price")
    )
    rest = (shown[c].tolist() for c in ("amount", "profit_ratio", "profit_abs", "fees", "exit_reason"))
    rows = []
    for n, (pair, side, ot, ct, op, cp, amount, ratio, profit, fees, reason) in enumerate(
        zip(*columns, *rest, strict=True), start=1
    ):
        rows.append(
            [
                _td(str(n), "num"),
                _td(escape(str(pair))),
                _td(escape(str(side))),
                _td(_fmt(ot, "time")),
                _td(_fmt(ct, "time")),
                _td(_fmt(ct - ot, "duration"), "num"),
                _td(_fmt(op, "price"), "num"),
                _td(_fmt(cp, "price"), "num"),
                _td(_fmt(amount, "price"), "num"),
                _td(_fmt(ratio, "pct"), f"num {_sign(ratio)}"),
                _td(_fmt(profit, "money", currency), f"num {_sign(profit)}"),
                _td(_fmt(fees, "money", currency), "num"),
                _td(escape(str(reason))),
            ]
        )
    head = [
        "#",
        "Pair",
        "Side",
        "Opened",
        "Closed",
        "Duration",
        "Entry",
        "Exit",
        "Amount",
        "Profit %",
        "Profit",
        "Fees",
        "Exit reason",
    ]
    note = (
        f"<p class='muted'>first {MAX_TRADE_ROWS:,} of {len(trades):,} trades (export them all with --export)</p>"
        if len(trades) > MAX_TRADE_ROWS
        else ""
    )
    return f"<section><h2>Trades</h2>{note}<div class='scroll'>{_table(head, rows, 'trades')}</div></section>"


_CSS = """
:root{--fg:#1d2330;--muted:#6b7385;--line:#e3e6ee;--bg:#fff;--soft:#f6f7fa;--pos:#138a4e;--neg:#c2352b;--accent:#2f5bd3}
*{box-sizing:border-box}body{margin:0;padding:24px 32px;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:12px 0 6px}
.muted{color:var(--muted);font-weight:normal}.desc{margin:2px 0;color:var(--muted)}
.badge{background:#d97706;color:#fff;border-radius:4px;padding:2px 8px;font-size:12px;vertical-align:middle;letter-spacing:.05em}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0 0}dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px}
.card{background:var(--soft);border-radius:6px;padding:8px 10px}.card .k{color:var(--muted);font-size:12px}.card .v{font-size:17px;font-variant-numeric:tabular-nums}
.pos{color:var(--pos)}.neg{color:var(--neg)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th{background:var(--soft);font-weight:600;position:sticky;top:0}td.num{text-align:right}table.monthly td{text-align:right;min-width:58px}
table.monthly td.year{text-align:left;font-weight:600}td.total{font-weight:600}
.scroll{overflow:auto;max-height:640px;border:1px solid var(--line);border-radius:6px}
.tabs{display:flex;flex-wrap:wrap;gap:4px;margin-bottom:8px}.tab{border:1px solid var(--line);background:var(--soft);border-radius:4px;padding:4px 10px;cursor:pointer;font:inherit}
.tab.active{background:var(--accent);border-color:var(--accent);color:#fff}.js .pane{display:none}.js .pane.active{display:block}.js .tabs{display:flex}.tabs{display:none}
svg.chart{display:block;font-size:11px}svg .grid{stroke:#eef0f5}svg .ax{fill:var(--muted)}svg .panel,svg .legend{fill:var(--fg);font-weight:600}
svg .base{stroke:#9aa3b5;stroke-dasharray:4 3}svg .equity{fill:none;stroke:var(--accent);stroke-width:1.5}svg .dd{fill:rgba(194,53,43,.25);stroke:var(--neg);stroke-width:1}
svg .wick{stroke-width:1;fill:none}svg .wick.up,svg .body.up{stroke:#26a269;fill:#26a269}svg .wick.down,svg .body.down{stroke:#e01b24;fill:#e01b24}svg .body{stroke-width:0}
svg .ov{fill:none;stroke-width:1.3}svg .ind{fill:none;stroke:#7c4dbd;stroke-width:1.2}svg .panel-bg{fill:#fbfbfd;stroke:var(--line)}
svg .ov0{stroke:#2f5bd3;fill:#2f5bd3}svg .ov1{stroke:#e66100;fill:#e66100}svg .ov2{stroke:#7c4dbd;fill:#7c4dbd}svg .ov3{stroke:#0b8f8f;fill:#0b8f8f}svg .ov4{stroke:#b5179e;fill:#b5179e}svg .ov5{stroke:#6b7385;fill:#6b7385}
svg path.ov{fill:none}svg .mk{stroke:#1d2330;stroke-width:.8}svg .mk-entry{fill:#2f5bd3}svg .mk-exit.win{fill:#26a269}svg .mk-exit.loss{fill:#e01b24}svg .mk:hover{stroke-width:2}
"""

_JS = """
document.body.classList.add('js');
document.querySelectorAll('.tab').forEach(function(tab){tab.addEventListener('click',function(){
  var id=tab.getAttribute('data-tab');
  document.querySelectorAll('.tab').forEach(function(t){t.classList.toggle('active',t===tab);});
  document.querySelectorAll('.pane').forEach(function(p){p.classList.toggle('active',p.getAttribute('data-pane')===id);});
});});
"""


def render_report(run: Any) -> str:
    """The report of ``run`` (an engine.backtest.session.BacktestRun) as one HTML document."""
    result = run.result
    bot = run.bot.model
    currency = escape(bot.capital.currency or "")
    initial = float(result.metrics.get("initial_capital", bot.capital.initial))
    title = f"{bot.bot} · {run.bot.strategy.model.strategy} · backtest"
    equity = f"<section><h2>Equity and drawdown</h2><div class='scroll'>{equity_chart(result.equity, initial)}</div></section>"
    body = "".join(
        [
            _header(run),
            _metrics(result.metrics, currency),
            equity,
            _monthly(result.equity, initial),
            _per_pair(result.per_pair, currency),
            _charts(run),
            _blocked(result.blocked),
            _trade_list(result.trades, currency),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}<script>{_JS}</script></body></html>\n"
    )


def write_report(run: Any, path: str | os.PathLike[str]) -> Path:
    """Write the HTML report of ``run`` to ``path`` (parent folders are created); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(run), encoding="utf-8")
    return target
