"""The news panel under a bot's chart: the decayed sentiment score of the coin the bot trades, as its
rules saw it at each candle's close (``sentiment.<coin>.score`` with the project's half-life and max
age), and a marker on each candle during which news about the coin became known.

Shown when something about the coin is stored; when the project has a ``sentiment.yaml`` but nothing
is stored yet, a line says so; otherwise the bot page stays as it was.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from nicegui import ui

from engine.config._project import find_project_root
from engine.web.api.context import WebContext
from engine.web.news_lines import load_sentiment_track, pair_coin, sentiment_chart, sentiment_settings

__all__ = ["sentiment_panel"]

log = logging.getLogger("engine.web")


@dataclass
class _Shown:
    coin: str
    chart: Any | None  # the ui.echart, when one is shown


# Panel box -> what it shows, so a redraw on a new candle updates the chart in place (no flicker, the
# zoom kept) instead of building it again.
_SHOWN: WeakKeyDictionary[ui.element, _Shown] = WeakKeyDictionary()


async def sentiment_panel(
    ctx: WebContext, box: ui.element, pair: str, options: dict[str, Any] | None
) -> None:
    """Fill ``box`` with the panel for the chart ``options`` of ``pair``; called again (a new candle, another
    pair), it updates the chart of the same coin in place and rebuilds the box otherwise."""
    if not options or not options.get("xAxis"):
        box.clear()
        _SHOWN.pop(box, None)
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
    shown = _SHOWN.get(box)
    if track is not None and shown is not None and shown.coin == coin and shown.chart is not None:
        shown.chart.options.clear()
        shown.chart.options.update(sentiment_chart(track))
        shown.chart.update()
        return
    box.clear()
    _SHOWN[box] = _Shown(coin, None)
    with box:
        if track is None:
            if configured:
                ui.label(f"No news about {coin.upper()} stored up to the chart's last candle.").classes(
                    "text-grey-7"
                ).mark("sentiment-none")
            return
        chart = (
            ui.echart(sentiment_chart(track)).classes("w-full").style("height: 200px").mark("sentiment-chart")
        )
        _SHOWN[box].chart = chart
        ui.link(f"Recent news about {coin.upper()}", f"/news?coin={coin}").mark("sentiment-news-link")
