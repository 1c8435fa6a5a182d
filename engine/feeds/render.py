"""Feed status as rich tables (``engine feeds status`` and ``engine status``)."""

from __future__ import annotations

from rich.table import Table

from engine.feeds.status import FeedFreshness, SourceHealth

__all__ = ["format_age", "render_feed_status"]

_STYLE = {
    "fresh": "green",
    "ok": "green",
    "stale": "yellow",
    "degraded": "yellow",
    "down": "red",
    "empty": "dim",
}


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def render_feed_status(feeds: list[FeedFreshness], sources: list[SourceHealth]) -> list[Table]:
    freshness = Table(title="feeds")
    for column in (
        "feed",
        "state",
        "last known (UTC)",
        "age",
        "max_age",
        "observations",
        "sources",
        "stored from",
    ):
        freshness.add_column(column)
    for row in feeds:
        state = row.state()
        when = "-"
        if row.last_known_ns is not None:
            import pandas as pd

            when = pd.Timestamp(row.last_known_ns, tz="UTC").strftime("%Y-%m-%d %H:%M")
        freshness.add_row(
            row.feed,
            f"[{_STYLE[state]}]{state}[/]",
            when,
            format_age(row.age_s()),
            format_age(row.max_age_s),
            str(row.observations),
            row.sources,
            f"[yellow]{row.stored_from}[/]" if "generated" in row.stored_from else row.stored_from,
        )
    health = Table(title="feed sources")
    for column in ("source", "state", "last success", "last error", "calls", "failures"):
        health.add_column(column)
    for h in sources:
        error = "-" if not h.last_error else f"{h.last_error_at:%m-%d %H:%M} {h.last_error[:90]}"
        health.add_row(
            h.source,
            f"[{_STYLE.get(h.state, 'white')}]{h.state}[/]",
            "-" if h.last_success is None else f"{h.last_success:%Y-%m-%d %H:%M}",
            error,
            str(h.calls),
            str(h.failures),
        )
    return [freshness, health] if sources else [freshness]
