"""The news panel under a bot's chart: the decayed sentiment score of the coin the bot trades, as its
rules saw it at each candle's close (``sentiment.<coin>.score`` with the project's half-life and max
age), and a marker on each candle during which news about the coin became known.

Shown when something about the coin is stored; when the project has a ``sentiment.yaml`` but nothing
is stored yet, a line says so; otherwise the bot page stays as it was.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nicegui import ui

from engine.config._project import find_project_root
from engine.web.api.context import WebContext
from engine.web.news_lines import load_sentiment_track, pair_coin, sentiment_chart, sentiment_settings

__all__ = ["sentiment_panel"]

log = logging.getLogger("engine.web")


async def sentiment_panel(ctx: WebContext, pair: str, options: dict[str, Any] | None) -> None:
    """Add the panel (in the current container) for the chart ``options`` of ``pair``."""
    if not options or not options.get("xAxis"):
        return
    labels = list(options["xAxis"][0].get("data") or [])
    coin = pair_coin(pair)
    try:
        root = find_project_root(ctx.bots_dir)
        configured, half_life, max_age = await asyncio.to_thread(sentiment_settings, root)
        async with ctx.sessions() as db:
            track = await load_sentiment_track(db, coin, labels, half_life, max_age)
    except Exception:  # the news panel never takes the bot page down with it
        log.exception("the news panel of %s could not be read", pair)
        return
    if track is None:
        if configured:
            ui.label(f"No news about {coin.upper()} stored up to the chart's last candle.").classes(
                "text-grey-7"
            ).mark("sentiment-none")
        return
    ui.echart(sentiment_chart(track)).classes("w-full").style("height: 200px").mark("sentiment-chart")
    ui.link(f"Recent news about {coin.upper()}", f"/news?coin={coin}").mark("sentiment-news-link")
