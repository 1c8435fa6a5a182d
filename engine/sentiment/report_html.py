"""The news report as text tables (terminal) and as one self-contained HTML page with a chart: price
candles, the sentiment line below them, a marker per event. Every text from news (headlines, outlet
names) is escaped: a ``<script>`` in a headline is shown as text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np
import pandas as pd

from engine.sentiment.report import NewsReport

__all__ = ["render_html", "render_text"]


def _pct(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value * 100:+.2f}%"


def _num(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:+.3f}"


def render_text(report: NewsReport) -> str:
    lines = [
        f"news report: {report.coin} on {report.timeframe} candles ({report.candles} candles, "
        f"{report.items} items)" + ("  [GENERATED news, not real]" if report.generated else ""),
        "",
        "sentiment vs forward return (sentiment known at the close; return from that close)",
        f"  {'horizon':>8} {'n':>7} {'pearson':>9} {'spearman':>9} {'mean fwd':>9}",
    ]
    for c in report.correlations:
        lines.append(
            f"  {c.horizon:>7}c {c.n:>7} {_num(c.pearson):>9} {_num(c.spearman):>9} {_pct(report.baseline[c.horizon]):>9}"
        )
    lines += [
        "",
        "event study (forward return after the first close that knew the event; 95% CI of the mean)",
    ]
    lines.append(f"  {'event':<12} {'horizon':>7} {'count':>6} {'mean':>9} {'median':>9} {'95% CI':>21}")
    for e in report.events:
        lines.append(
            f"  {e.event:<12} {e.horizon:>6}c {e.count:>6} {_pct(e.mean):>9} {_pct(e.median):>9} "
            f"{'[' + _pct(e.low) + ', ' + _pct(e.high) + ']':>21}"
        )
    if not report.events:
        lines.append("  (no events about this coin in the range)")
    lines += ["", "caveats:"] + [f"  - {c}" for c in report.caveats]
    return "\n".join(lines)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _chart(report: NewsReport, candles: pd.DataFrame) -> str:
    from engine.backtest._svg import Marker, candle_chart

    close = candles["close"].to_numpy(dtype=np.float64)
    times = candles.index.as_unit("ns").asi8
    markers = []
    for kind, closes in report.event_times.items():
        for t in closes:
            row = min(int(np.searchsorted(times, t, side="right")) - 1, len(close) - 1)
            markers.append(
                Marker(int(times[max(row, 0)]), float(close[max(row, 0)]), "entry", "long", True, kind)
            )
    return candle_chart(candles, [], [("sentiment", report.sentiment)], markers)


def render_html(
    report: NewsReport, candles: pd.DataFrame, headlines: Sequence[tuple[str, str, str]] = ()
) -> str:
    """The page. ``headlines``: (time, source, title) of recent items, shown escaped."""
    from engine.backtest.report import _CSS

    title = f"News report: {report.coin.upper()} ({report.timeframe})"
    correlations = _table(
        ["horizon (candles)", "n", "pearson", "spearman", "mean forward return"],
        [
            [str(c.horizon), str(c.n), _num(c.pearson), _num(c.spearman), _pct(report.baseline[c.horizon])]
            for c in report.correlations
        ],
    )
    events = _table(
        ["event", "horizon (candles)", "count", "mean", "median", "95% CI of the mean"],
        [
            [
                e.event,
                str(e.horizon),
                str(e.count),
                _pct(e.mean),
                _pct(e.median),
                f"[{_pct(e.low)}, {_pct(e.high)}]",
            ]
            for e in report.events
        ],
    )
    news = _table(["published", "source", "headline"], [list(h) for h in headlines]) if headlines else ""
    warning = '<p class="muted"><b>GENERATED news history, not real news.</b></p>' if report.generated else ""
    caveats = "".join(f"<li>{escape(c)}</li>" for c in report.caveats)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>{warning}"
        f"<p>{report.candles} candles, {report.items} news items. Sentiment is the time-decayed score a bot "
        "could have known at each close; markers are events at the first close that knew them.</p>"
        f'<h2>Price, sentiment and events</h2><div class="chart-wrap">{_chart(report, candles)}</div>'
        f"<h2>Sentiment vs forward return</h2>{correlations}"
        f"<h2>Event study</h2>{events or '<p>no events</p>'}"
        f"<h2>Caveats</h2><ul>{caveats}</ul>"
        + (f"<h2>Recent headlines</h2>{news}" if news else "")
        + "</main></body></html>"
    )
