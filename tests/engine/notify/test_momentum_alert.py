"""The momentum_alert notification: pair, alert, score, price, candle and why, with the strategy's text
kept literal in every format."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.notify import MomentumAlert, render
from engine.notify._render import to_html, to_markdown_v2, to_plain
from tests.engine.notify.fakes import parse_markdown_v2, parse_telegram_html


def _alert(why: str = "price and volume surging together") -> MomentumAlert:
    return MomentumAlert(
        bot="pump-watch",
        pair="ADA/BTC",
        alert="pump",
        why=why,
        score=5.234,
        price=0.0000123,
        time=datetime(2024, 1, 2, 7, 40, tzinfo=UTC),
        mode="paper",
    )


def test_the_message_names_pair_score_and_why():
    text = to_plain(render(_alert()))
    assert text.splitlines()[0] == "[paper] Alert pump: ADA/BTC (pump-watch)"
    assert (
        "Pair: ADA/BTC" in text
        and "Score: 5.234" in text
        and "Why: price and volume surging together" in text
    )
    assert "Candle: 2024-01-02 07:40 UTC" in text
    data = render(_alert()).data
    assert data["pair"] == "ADA/BTC" and data["score"] == 5.234 and data["why"].startswith("price")


def test_an_alert_without_a_score_leaves_the_line_out():
    text = to_plain(render(MomentumAlert(bot="b", pair="X/Y", alert="a", why="w")))
    assert "Score" not in text and "Why: w" in text


def test_the_strategy_text_stays_literal_in_telegram_markups():
    message = render(_alert(why="<b>*dump*</b> & [link](http://x)"))
    assert parse_telegram_html(to_html(message)) == to_plain(message)
    assert parse_markdown_v2(to_markdown_v2(message)) == to_plain(message)
