"""The news page at ``/news`` (any signed-in role): the newest stored items, all or about one coin
(``/news?coin=eth``), with when each was published, its source, the score the rules use and the
events found in it; re-read from the store by a timer.

Headlines, sources and links come from the internet. Every cell is Vue text interpolation (the
browser shows ``<script>`` as characters), a headline is a link only when its URL is http(s)
(:func:`engine.web.news_lines.safe_link`), and links open in a new tab without a referrer or opener.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nicegui import ui

from engine.web import formatting as fmt
from engine.web.api.context import WebContext
from engine.web.news_lines import NEWS_ROWS, NewsLine, load_news, news_coins, stored_news
from engine.web.ui._tables import data_table
from engine.web.ui.shell import action_user, current_user, frame, page_user
from engine.web.ui.trades import REFRESH_SECONDS

__all__ = ["ALL", "EMPTY", "news_cells", "register"]

ALL = "all coins"
EMPTY = (
    "No news stored yet: an admin runs `engine sentiment fetch` (sources in sentiment.yaml), or "
    "`engine run` fetches news while a bot's rules read sentiment.*, news.* or events.*. "
    "`engine sentiment synth` stores generated demo news."
)
_COIN = re.compile(r"^[a-z][a-z0-9]{0,15}$")
COLUMNS = (
    ("published", "Published (UTC)", True),
    ("title", "Headline", True),
    ("source", "Source", False),
    ("score", "Score", True),
    ("scored_by", "Scored by", False),
    ("coins", "Coins", False),
    ("events", "Events", False),
)
# The headline as a link's text; the link only when the server found an http(s) URL. Both are text
# interpolation and attribute binding: nothing of the row is rendered as HTML.
_TITLE_CELL = (
    '<q-td :props="props" style="overflow-wrap: anywhere">'
    '<a v-if="props.row.link" :href="props.row.link" target="_blank" rel="noopener noreferrer nofollow" '
    'class="text-primary">{{ props.value }}</a><span v-else>{{ props.value }}</span></q-td>'
)


def news_cells(line: NewsLine) -> dict[str, Any]:
    source = line.source + (f" (also {', '.join(line.also_from)})" if line.also_from else "")
    by = line.scored_by
    if by == "local" and line.model_status not in ("not_called", "ok"):
        by = f"local (model: {line.model_status})"
    return {
        "id": line.id,
        "published": fmt.when(line.published),
        "title": line.title,
        "link": line.link,
        "source": source,
        "score": f"{line.score:+.2f}",
        "tone": fmt.tone(round(line.score, 2)),
        "scored_by": by,
        "coins": ", ".join(c.upper() for c in line.coins) or fmt.DASH,
        "events": ", ".join(line.events) or fmt.DASH,
    }


def _coin_of(value: str | None) -> str | None:
    coin = (value or "").strip().lower()
    return coin if _COIN.match(coin) and coin != "all" else None


@dataclass
class _NewsView:
    ctx: WebContext
    coin: str | None
    shown: tuple[Any, ...] | None = None
    elements: dict[str, Any] = field(default_factory=dict)

    async def build(self) -> None:
        ui.label(
            f"The {NEWS_ROWS} newest items, newest first. Score: the model's where it was asked and "
            "answered, else the local (lexicon) score, in [-1, 1]. A bot's rules count an item from when it "
            f"could be known (docs/sentiment.md). Times are UTC; refreshed every {REFRESH_SECONDS:g} s."
        ).classes("text-caption text-grey-7")
        with ui.row().classes("items-center gap-4"):
            choices = [ALL] + ([self.coin] if self.coin else [])
            self.elements["coin"] = (
                ui.select(choices, value=self.coin or ALL, label="Coin", on_change=self.pick)
                .classes("w-48")
                .mark("news-coin")
            )
        self.elements["empty"] = ui.label(EMPTY).classes("text-body1").mark("news-empty")
        self.elements["empty"].set_visibility(False)
        table = data_table(
            COLUMNS, [], empty="No news about this coin.", toned={"score": "tone"}, right=("score",)
        )
        table.mark("news").props('data-testid="news"')
        table.add_slot("body-cell-title", _TITLE_CELL)
        self.elements["table"] = table
        await ui.context.client.connected()  # the page first, the rows over the socket
        await self.refresh()
        ui.timer(REFRESH_SECONDS, self.tick)

    async def pick(self, event: Any) -> None:
        if await action_user(self.ctx, "read") is None:
            return
        self.coin = _coin_of(event.value)
        await self.refresh()

    async def tick(self) -> None:
        if await current_user(self.ctx) is None:
            ui.navigate.to("/login")
            return
        await self.refresh()

    async def refresh(self) -> None:
        async with self.ctx.sessions() as db:
            lines = await load_news(db, self.coin)
            coins = await news_coins(db)
            stored = await stored_news(db)
        rows = [news_cells(line) for line in lines]
        state = (self.coin, tuple(coins), stored > 0, tuple(tuple(r.values()) for r in rows))
        if state == self.shown:
            return  # nothing changed: leave the page alone
        self.shown = state
        select = self.elements["coin"]
        options = [ALL, *coins]
        if self.coin and self.coin not in options:
            options.append(self.coin)
        if options != list(select.options):
            select.set_options(options, value=self.coin or ALL)
        self.elements["empty"].set_visibility(stored == 0)
        table = self.elements["table"]
        table.rows = rows
        table.update()


def register(ctx: WebContext) -> None:
    @ui.page("/news")
    async def news_page(coin: str | None = None) -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "News"):
            await _NewsView(ctx, _coin_of(coin)).build()
