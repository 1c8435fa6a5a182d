"""The terminal summary of a backtest (rich tables) and the JSON-safe form of its metrics."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

__all__ = ["alert_counts", "compact_duration", "config_hash", "json_metrics", "render_summary"]

_PERCENT = {
    "total_return",
    "annualised_return",
    "max_drawdown",
    "win_rate",
    "exposure",
    "best_trade",
    "worst_trade",
    "avg_profit_ratio",
    "profit_ratio",
    "expectancy_ratio",
}


def compact_duration(value: pd.Timedelta) -> str:
    """Durations for tables and reports: 3d 4h, 4h 24m, 35m."""
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


# Per-pair tables must fit an 80-column terminal.
_SHORT_HEADERS = {
    "win_rate": "win",
    "profit_abs": "profit",
    "avg_profit_ratio": "avg",
    "avg_duration": "held",
}


def json_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics with timestamps as ISO-8601, durations as seconds and NaN/inf as None (for JSON/SQL)."""
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, pd.Timestamp):
            value = value.isoformat()
        elif isinstance(value, pd.Timedelta):
            value = value.total_seconds()
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[name] = value
    return out


def config_hash(*texts: str, params: Mapping[str, Any] | None = None) -> str:
    """A stable hash of what produced a run: the bot and strategy files and the resolved inputs."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    for name in sorted(params or {}):
        digest.update(f"{name}={params[name]!r}\n".encode())
    return digest.hexdigest()[:16]


def _fmt(name: str, value: Any, currency: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, pd.Timedelta):
        return compact_duration(value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    if name in _PERCENT:
        return f"{float(value):.2%}"
    if name in ("initial_capital", "final_equity", "fees_paid"):
        return f"{float(value):.8g} {currency}".strip()
    if name in ("profit_abs", "fees", "expectancy"):
        return f"{float(value):.4g}"
    if isinstance(value, float | np.floating):
        return f"{float(value):.3f}"
    return str(value)


def alert_counts(signals: Any) -> dict[str, int]:
    """Alert name -> alerts sent over every pair (the ``alert:<name>`` signal columns)."""
    counts: dict[str, int] = {}
    for frame in signals.values():
        for column in frame.columns:
            if str(column).startswith("alert:"):
                name = str(column)[len("alert:") :]
                counts[name] = counts.get(name, 0) + int(frame[column].to_numpy().sum())
    return counts


def render_summary(run: Any, console: Console | None = None) -> None:
    """Print the run's metrics, per-pair results and exit reasons."""
    console = console or Console()
    result = run.result
    bot = run.bot.model
    currency = bot.capital.currency or ""
    metrics = result.metrics
    grid = Table.grid(padding=(0, 2))
    names = [n for n in metrics if n not in ("start", "end")]
    half = (len(names) + 1) // 2
    for left, right in zip(names[:half], [*names[half:], None], strict=True):
        row = [left.replace("_", " "), _fmt(left, metrics[left], currency)]
        row += [right.replace("_", " "), _fmt(right, metrics[right], currency)] if right else ["", ""]
        grid.add_row(*row)
    title = f"{bot.bot} · {run.bot.strategy.model.strategy} · {run.timeframe} · {_fmt('start', run.start, '')} → {_fmt('end', run.end, '')}"
    if run.synthetic:
        title += " · SYNTHETIC DATA"
    parts: list[Any] = [grid]
    per_pair = result.per_pair
    if len(per_pair):
        table = Table(title="per pair", title_justify="left")
        table.add_column("pair")
        for column in per_pair.columns:
            table.add_column(_SHORT_HEADERS.get(str(column), str(column).replace("_", " ")), justify="right")
        for pair, row in per_pair.iterrows():
            table.add_row(str(pair), *(_fmt(str(c), row[c], "") for c in per_pair.columns))
        parts.append(table)
    if len(result.trades):
        reasons = result.trades.groupby("exit_reason")["profit_abs"].agg(["count", "sum"])
        table = Table(title="exits", title_justify="left")
        table.add_column("reason")
        table.add_column("trades", justify="right")
        table.add_column(f"profit {currency}".strip(), justify="right")
        for reason, row in reasons.iterrows():
            table.add_row(str(reason), str(int(row["count"])), f"{row['sum']:.8g}")
        parts.append(table)
    if len(result.blocked):
        blocked = result.blocked.groupby("reason").size()
        parts.append(
            "blocked entries: " + ", ".join(f"{reason} {count}" for reason, count in blocked.items())
        )
    alerts = alert_counts(getattr(run, "signals", None) or {})
    if alerts:
        parts.append(
            "alerts (as a live bot would send them, rate limited): "
            + ", ".join(f"{name} {count}" for name, count in alerts.items())
        )
    gaps = getattr(run, "feed_gaps", None) or {}
    for series, (missing, total) in gaps.items():
        if missing:
            parts.append(
                f"feed {series}: no value at {missing:,} of {total:,} candles ({missing / max(total, 1):.1%}; "
                "not yet known or older than its max_age): rules reading it were false there"
            )
    console.print(Panel(Group(*parts), title=title, title_align="left"))
