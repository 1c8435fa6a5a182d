"""The feeds page at ``/feeds`` (any signed-in role): each feed's freshness and each source's health,
re-read from the store by a timer (the figures of ``GET /feeds/status`` and ``engine feeds status``).

A source's last error comes from a remote service: it is a table cell (text), never markup, and it
was masked for keys when stored and again when read (:mod:`engine.web.feed_lines`). States are
coloured by a class the server picks; the cell templates never render row text as HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nicegui import ui

from engine.web import formatting as fmt
from engine.web.api.context import WebContext
from engine.web.feed_lines import FeedLine, FeedStatus, SourceLine, load_feed_status
from engine.web.ui._tables import data_table
from engine.web.ui.shell import current_user, frame, page_user
from engine.web.ui.trades import REFRESH_SECONDS

__all__ = ["EMPTY", "feed_cells", "register", "source_cells"]

EMPTY = (
    "No feed data yet: run `engine feeds fetch` (admin) to backfill the feeds' history; `engine run` "
    "(or `engine serve --run`) then keeps the feeds its bots read fresh. `engine feeds synth` stores "
    "generated demo data to try strategies offline."
)
# State -> tone (the class a state cell gets). Amber is Quasar's "warning".
TONES = {
    "fresh": "good",
    "ok": "good",
    "stale": "warn",
    "degraded": "warn",
    "down": "bad",
    "empty": "none",
    "not called": "none",
}
_STATE_CELL = (
    '<q-td :props="props" class="whitespace-nowrap" :class="{'
    "'text-positive text-weight-bold': props.row.tone === 'good', "
    "'text-warning text-weight-bold': props.row.tone === 'warn', "
    "'text-negative text-weight-bold': props.row.tone === 'bad', "
    "'text-grey-6': props.row.tone === 'none'}\">{{ props.value }}</q-td>"
)
_STORED_CELL = (
    '<q-td :props="props" :class="{\'text-warning text-weight-bold\': props.row.generated}">'
    "{{ props.value }}</q-td>"
)
FEED_COLUMNS = (
    ("feed", "Feed", True),
    ("state", "State", True),
    ("last_known", "Last known (UTC)", False),
    ("age", "Age", True),
    ("max_age", "Max age", False),
    ("observations", "Observations", False),
    ("sources", "Sources (fallback order)", False),
    ("stored_from", "Stored from", False),
)
SOURCE_COLUMNS = (
    ("source", "Source", True),
    ("state", "State", True),
    ("last_success", "Last success (UTC)", False),
    ("last_error", "Last error", True),
    ("down_since", "Down since (UTC)", False),
    ("calls", "Calls", False),
    ("failures", "Failures", False),
    ("limit", "Limit", False),
)


def _hook[E: ui.element](element: E, name: str) -> E:
    """A test hook: NiceGUI's marker (simulated user) and the same ``data-testid`` (browser)."""
    return element.mark(name).props(f'data-testid="{name}"')


def _span(seconds: float | None) -> str:
    if seconds is None:
        return fmt.DASH
    now = datetime(2000, 1, 1)
    return fmt.age(now - timedelta(seconds=seconds), now)


def feed_cells(line: FeedLine, now: datetime) -> dict[str, Any]:
    stored = ", ".join(line.stored_from) or fmt.DASH
    if line.generated:
        stored = f"{stored}: GENERATED demo data, not market data"
    return {
        "id": line.name,
        "feed": line.name,
        "state": line.state,
        "tone": TONES.get(line.state, "none"),
        "last_known": fmt.when(line.last_known),
        "age": fmt.age(line.last_known, now) if line.last_known else fmt.DASH,
        "max_age": _span(line.max_age_s),
        "observations": f"{line.observations:,}",
        "sources": " > ".join(line.sources),
        "stored_from": stored,
        "generated": line.generated,
    }


def source_cells(line: SourceLine) -> dict[str, Any]:
    error = fmt.DASH
    if line.last_error:
        error = (
            f"{fmt.when(line.last_error_at)}: {line.last_error}" if line.last_error_at else line.last_error
        )
    return {
        "id": line.name,
        "source": line.name,
        "state": line.state,
        "tone": TONES.get(line.state, "none"),
        "last_success": fmt.when(line.last_success),
        "last_error": error,
        "down_since": fmt.when(line.down_since),
        "calls": f"{line.calls:,}",
        "failures": f"{line.failures:,}",
        "limit": fmt.DASH if line.calls_per_minute is None else f"{line.calls_per_minute:g} / min",
    }


@dataclass
class _FeedsView:
    ctx: WebContext
    shown: tuple[Any, ...] | None = None
    elements: dict[str, Any] = field(default_factory=dict)

    async def build(self) -> None:
        ui.label(
            "Fresh: the newest value is within the feed's max age; stale: older, so rules reading it are "
            "false; empty: nothing stored. Sources: degraded after a failed call (the next source of the "
            "chain is used), down when failing longer than alerts.down_after. Calls and failures count "
            "since the source was first called; the limit is the calls per minute its client keeps to. "
            "Each change of a source's state is an event on the Logs page (feed_degraded, feed_down, "
            f"feed_ok). Times are UTC; refreshed every {REFRESH_SECONDS:g} s."
        ).classes("text-caption text-grey-7")
        # Hidden until the first read says nothing was fetched (no flash of it on a page with data).
        self.elements["empty"] = ui.label(EMPTY).classes("text-body1").mark("feeds-empty")
        self.elements["empty"].set_visibility(False)
        self.elements["problems"] = ui.column().classes("gap-0")
        self.elements["generated"] = (
            ui.label(
                "Some feeds hold GENERATED demo data (engine feeds synth), not market data: "
                "a backtest on it shows how a strategy behaves, not what it would have earned."
            )
            .classes("text-warning text-weight-bold")
            .mark("feeds-generated")
        )
        ui.label("Feeds").classes("text-h6")
        feeds = _hook(
            data_table(FEED_COLUMNS, [], empty="No feeds.", right=("age", "max_age", "observations")), "feeds"
        )
        feeds.add_slot("body-cell-state", _STATE_CELL)
        feeds.add_slot("body-cell-stored_from", _STORED_CELL)
        ui.label("Sources").classes("text-h6")
        sources = _hook(
            data_table(
                SOURCE_COLUMNS, [], empty="No source was called yet.", right=("calls", "failures", "limit")
            ),
            "feed-sources",
        )
        sources.add_slot("body-cell-state", _STATE_CELL)
        for column in sources.columns:
            if column["name"] == "last_error":
                # A remote error may hold a long URL without spaces: it wraps instead of widening the page.
                column["style"] = "overflow-wrap: anywhere"
        self.elements["feeds"], self.elements["sources"] = feeds, sources
        self.elements["generated"].set_visibility(False)
        await ui.context.client.connected()  # the page first, the rows over the socket
        await self.refresh()
        ui.timer(REFRESH_SECONDS, self.tick)

    async def tick(self) -> None:
        if await current_user(self.ctx) is None:
            ui.navigate.to("/login")
            return
        await self.refresh()

    async def refresh(self) -> None:
        async with self.ctx.sessions() as db:
            status = await load_feed_status(db, self.ctx.bots_dir, self.ctx.box)
        self.show(status)

    def show(self, status: FeedStatus) -> None:
        feeds = [feed_cells(line, status.now) for line in status.feeds]
        sources = [source_cells(line) for line in status.sources]
        state = (tuple(tuple(r.values()) for r in feeds + sources), status.problems, status.fetched)
        if state == self.shown:
            return  # nothing changed: leave the page alone
        self.shown = state
        self.elements["empty"].set_visibility(not status.fetched)
        self.elements["generated"].set_visibility(any(line.generated for line in status.feeds))
        problems = self.elements["problems"]
        problems.clear()
        with problems:
            for problem in status.problems:
                # feeds.yaml's own errors (file:line:col); its feeds are left out until it is fixed.
                ui.label(f"{problem} (built-in feeds shown)").classes("text-negative").mark("feeds-problem")
        for name, rows in (("feeds", feeds), ("sources", sources)):
            table = self.elements[name]
            table.rows = rows
            table.update()


def register(ctx: WebContext) -> None:
    @ui.page("/feeds")
    async def feeds_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Feeds"):
            await _FeedsView(ctx).build()
