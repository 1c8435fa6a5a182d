from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.notify import (
    BotDaySummary,
    DailySummary,
    EmailConfig,
    ErrorEvent,
    ReloadResult,
    RiskHalt,
    TradeClosed,
    TradeOpened,
    render,
)
from engine.notify._email import build_email
from engine.notify._render import (
    Rendered,
    escape_markdown_v2,
    num,
    suppressed_message,
    to_html,
    to_markdown_v2,
    to_plain,
)
from engine.notify._telegram import fit
from tests.engine.notify.fakes import MarkupError, parse_markdown_v2, parse_telegram_html

HOSTILE = "x<b>&amp;</b> *bold* _it_ [l](http://e.vil) `c` \\ </pre> ```"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            TradeOpened(
                bot="btc-ema", pair="BTC/USDT", side="long", price=64210.5, amount=0.0123, stop=63000
            ),
            "[paper] Trade opened: btc-ema\nPair: BTC/USDT\nSide: long\nPrice: 64,210.5\nAmount: 0.0123\nStop: 63,000",
        ),
        (
            TradeClosed(
                bot="btc-ema",
                pair="BTC/USDT",
                side="long",
                entry_price=64210.5,
                exit_price=65000,
                amount=0.0123,
                pnl=9.71,
                pnl_ratio=0.01229,
                reason="take_profit",
                duration=timedelta(hours=26, minutes=5),
                currency="USDT",
            ),
            "[paper] Trade closed: btc-ema\nPair: BTC/USDT\nSide: long\nEntry: 64,210.5\nExit: 65,000\n"
            "Amount: 0.0123\nPnL: +9.71 USDT (+1.23%)\nReason: take_profit\nHeld: 1d 2h 5m",
        ),
        (
            RiskHalt(
                reason="daily loss limit 5% reached", until=datetime(2024, 5, 2, tzinfo=UTC), mode="live"
            ),
            "[live] Risk halt: all bots\nReason: daily loss limit 5% reached\nUntil: 2024-05-02 00:00 UTC",
        ),
        (
            ReloadResult(ok=True, changed=("btc-ema",), added=("eth-grid", "sol")),
            "[paper] Reload applied\nChanged: btc-ema\nAdded: eth-grid, sol",
        ),
        (ReloadResult(ok=True), "[paper] Reload applied\nChanged: nothing"),
        (
            ReloadResult(ok=False, errors=("bots/a.yaml:3:9: error[DSL003]: unknown function 'rsii'",)),
            "[paper] Reload failed: the previous configuration keeps running\n\n"
            "bots/a.yaml:3:9: error[DSL003]: unknown function 'rsii'",
        ),
        (
            ErrorEvent(message="exchange unreachable", bot="btc-ema", where="engine.orders"),
            "[paper] Error: btc-ema\nWhere: engine.orders\n\nexchange unreachable",
        ),
        (
            DailySummary(
                since=datetime(2024, 5, 1, tzinfo=UTC),
                until=datetime(2024, 5, 2, tzinfo=UTC),
                bots=(
                    BotDaySummary("btc-ema", 3, 2, 12.5, 1),
                    BotDaySummary("eth", 1, 0, -4.25, equity=1010.0),
                ),
            ),
            "[paper] Daily summary 2024-05-01\nbtc-ema: 3 trades, 2 won, PnL +12.5 USDT, 1 open\n"
            "eth: 1 trades, 0 won, PnL -4.25 USDT, equity 1,010\nTotal: 4 trades, 2 won, PnL +8.25 USDT",
        ),
    ],
)
def test_templates(event: object, expected: str) -> None:
    assert to_plain(render(event, mode="paper")) == expected  # type: ignore[arg-type]


def test_rendered_carries_what_webhooks_need() -> None:
    message = render(TradeOpened(bot="b", pair="P", side="short", price=1.0, amount=2.0), mode="testnet")
    assert (message.kind, message.mode, message.bot) == ("trade_opened", "testnet", "b")
    assert message.data["price"] == 1.0 and "mode" not in message.data
    with pytest.raises(TypeError, match="not a notification event"):
        render("nope", mode=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [(64210.5, "64,210.5"), (0.00001234, "0.00001234"), (1234567.891, "1,234,568"), (0, "0"), (-2.5, "-2.5"),
     (float("nan"), "nan"), (1e-15, "0")],
)  # fmt: skip
def test_numbers(value: float, text: str) -> None:
    assert num(value) == text


def hostile_message() -> Rendered:
    event = ErrorEvent(message=HOSTILE + "\nline2", bot=HOSTILE, where=HOSTILE)
    return render(event, mode="live").with_note(HOSTILE)


def test_html_escaping_keeps_user_text_literal() -> None:
    html = to_html(hostile_message())
    shown = parse_telegram_html(html)  # raises where Telegram would refuse the markup
    assert shown == to_plain(hostile_message())
    assert html.startswith("<b>[live] Error: x&lt;b&gt;&amp;amp;&lt;/b&gt;")


def test_markdown_v2_escaping_keeps_user_text_literal() -> None:
    text = to_markdown_v2(hostile_message())
    assert parse_markdown_v2(text) == to_plain(hostile_message())


def test_the_strict_parsers_do_reject_raw_markup() -> None:
    # The checks above only mean something if the fake parsers refuse what Telegram refuses.
    with pytest.raises(MarkupError):
        parse_telegram_html("<b>x</b> <script>")
    with pytest.raises(MarkupError):
        parse_telegram_html("a & b &nbsp;")
    with pytest.raises(MarkupError):
        parse_markdown_v2("price 1.5")
    with pytest.raises(MarkupError):
        parse_markdown_v2("*bold")


@given(st.text(max_size=200))
def test_any_text_survives_both_markups(text: str) -> None:
    message = Rendered(
        kind="error", title=text, lines=(("Where", text),), body=text or None, note=text or None
    )
    plain = to_plain(message)
    assert parse_telegram_html(to_html(message)) == plain
    assert parse_markdown_v2(to_markdown_v2(message)) == plain


def test_escape_markdown_v2_escapes_every_reserved_character() -> None:
    assert (
        escape_markdown_v2("_*[]()~`>#+-=|{}.!\\a") == "".join("\\" + c for c in "_*[]()~`>#+-=|{}.!\\") + "a"
    )


@pytest.mark.parametrize("mode", ["HTML", "MarkdownV2", "plain"])
def test_long_messages_fit_telegram(mode: str) -> None:
    event = ReloadResult(ok=False, errors=tuple("<&*_." * 400 for _ in range(30)), changed=("x" * 5000,))
    text = fit(render(event, mode="live"), mode)
    assert len(text) <= 4096
    if mode == "HTML":
        parse_telegram_html(text)
    elif mode == "MarkdownV2":
        parse_markdown_v2(text)


def test_suppressed_summary() -> None:
    message = suppressed_message({"trade_closed": 3, "error": 2}, mode="live")
    assert to_plain(message) == (
        "[live] Notifications suppressed\n\n"
        "5 notifications were not sent because of the rate limit (2 error, 3 trade_closed)."
    )


def test_email_subject_cannot_inject_headers() -> None:
    config = EmailConfig.model_validate({"host": "h", "from": "a@x", "to": ["b@x", "c@x"], "tls": "none"})
    message = render(RiskHalt(reason="r", bot="evil\r\nBcc: victim@x"), mode="live")
    email = build_email(config, message)
    assert email["Subject"] == "[engine] [live] Risk halt: evil Bcc: victim@x"
    assert email["Bcc"] is None
    assert email["To"] == "b@x, c@x"
    assert "Reason: r" in email.get_content()
