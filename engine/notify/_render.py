"""Message templates: an event becomes a neutral ``Rendered`` (plain strings only), and each output
format (plain text, Telegram HTML, Telegram MarkdownV2) escapes every piece of it.

Templates never produce markup, so user text (bot names, reasons, exchange error messages) cannot
inject formatting or links into a message, whatever it contains.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from engine.notify.events import (
    DailySummary,
    ErrorEvent,
    Event,
    ModelAlert,
    MomentumAlert,
    ReloadResult,
    RiskHalt,
    TradeClosed,
    TradeOpened,
)

__all__ = [
    "Rendered",
    "escape_html",
    "escape_markdown_v2",
    "render",
    "suppressed_message",
    "to_html",
    "to_markdown_v2",
    "to_plain",
]

MAX_VALUE = 300
MAX_BODY = 3000


@dataclass(frozen=True, slots=True)
class Rendered:
    kind: str
    title: str
    lines: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    note: str | None = None
    mode: str | None = None
    bot: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    # One id per message, kept across retries so receivers can drop duplicates.
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def with_note(self, note: str) -> Rendered:
        return replace(self, note=note)

    def shortened(self, max_value: int, max_body: int) -> Rendered:
        return replace(
            self,
            lines=tuple((label, _clip(value, max_value)) for label, value in self.lines),
            body=None if self.body is None else _clip(self.body, max_body),
        )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def num(value: float) -> str:
    """About seven significant digits, thousands separators, no exponent: 64,210.5 or 0.00001234."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    decimals = min(max(0, 6 - math.floor(math.log10(abs(value)))), 12)
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def signed(value: float) -> str:
    text = num(value)
    return text if text.startswith("-") or text == "0" else "+" + text


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return " ".join(p for p in (f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m") if p)


def _utc(value: datetime) -> str:
    return (
        value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        if value.tzinfo
        else value.strftime("%Y-%m-%d %H:%M")
    )


def _title(mode: str | None, text: str) -> str:
    return f"[{mode}] {text}" if mode else text


def _data(event: Event) -> dict[str, Any]:
    return {k: v for k, v in asdict(event).items() if k != "mode"}


def render(event: Event, *, mode: str | None = None) -> Rendered:
    """The neutral message for an event; ``mode`` is used when the event does not carry one."""
    if not isinstance(event, Event):  # the union of every event class
        raise TypeError(f"not a notification event: {type(event).__name__}")
    mode = event.mode or mode
    base: dict[str, Any] = {"kind": event.kind, "mode": mode, "bot": event.bot, "data": _data(event)}
    match event:
        case TradeOpened():
            lines = [("Pair", event.pair), ("Side", event.side), ("Price", num(event.price))]
            lines.append(("Amount", num(event.amount)))
            if event.stop is not None:
                lines.append(("Stop", num(event.stop)))
            if event.take_profit is not None:
                lines.append(("Take profit", num(event.take_profit)))
            if event.reason:
                lines.append(("Reason", event.reason))
            return Rendered(title=_title(mode, f"Trade opened: {event.bot}"), lines=tuple(lines), **base)
        case TradeClosed():
            pnl = signed(event.pnl) + (f" {event.currency}" if event.currency else "")
            if event.pnl_ratio is not None and math.isfinite(event.pnl_ratio):
                pnl += f" ({event.pnl_ratio * 100:+.2f}%)"
            lines = [
                ("Pair", event.pair),
                ("Side", event.side),
                ("Entry", num(event.entry_price)),
                ("Exit", num(event.exit_price)),
                ("Amount", num(event.amount)),
                ("PnL", pnl),
            ]
            if event.reason:
                lines.append(("Reason", event.reason))
            if event.duration is not None:
                lines.append(("Held", _duration(event.duration)))
            return Rendered(title=_title(mode, f"Trade closed: {event.bot}"), lines=tuple(lines), **base)
        case RiskHalt():
            who = event.bot if event.bot else "all bots"
            lines = [("Reason", event.reason)]
            if event.until is not None:
                lines.append(("Until", _utc(event.until)))
            return Rendered(title=_title(mode, f"Risk halt: {who}"), lines=tuple(lines), **base)
        case ReloadResult():
            lines = [
                (label, ", ".join(names))
                for label, names in (
                    ("Changed", event.changed),
                    ("Added", event.added),
                    ("Removed", event.removed),
                )
                if names
            ]
            if event.ok:
                title, body = "Reload applied", None
                if not lines:
                    lines = [("Changed", "nothing")]
            else:
                title = "Reload failed: the previous configuration keeps running"
                body = "\n".join(event.errors) or None
            return Rendered(title=_title(mode, title), lines=tuple(lines), body=body, **base)
        case ErrorEvent():
            lines = [("Where", event.where)] if event.where else []
            title = f"Error: {event.bot}" if event.bot else "Error"
            return Rendered(title=_title(mode, title), lines=tuple(lines), body=event.message, **base)
        case MomentumAlert():
            lines = [("Pair", event.pair), ("Alert", event.alert)]
            if event.score is not None and math.isfinite(event.score):
                lines.append(("Score", num(event.score)))
            if event.price is not None:
                lines.append(("Price", num(event.price)))
            if event.time is not None:
                lines.append(("Candle", _utc(event.time)))
            lines.append(("Why", event.why))
            title = f"Alert {event.alert}: {event.pair} ({event.bot})"
            return Rendered(title=_title(mode, title), lines=tuple(lines), **base)
        case ModelAlert():
            what = {"drift": "feature drift", "degraded": "live accuracy degraded"}.get(
                event.what, event.what.replace("_", " ")
            )
            title = f"Model {event.model}: {what}"
            return Rendered(
                title=_title(mode, title), lines=(("Model", event.model),), body=event.message, **base
            )
    assert isinstance(event, DailySummary)
    return _render_summary(event, mode, base)


def _render_summary(event: DailySummary, mode: str | None, base: dict[str, Any]) -> Rendered:
    one_day = (
        event.until - event.since == timedelta(days=1)
        and event.since.timetz().replace(tzinfo=None) == time(0, 0)
        and event.since.utcoffset() in (None, timedelta(0))
    )
    period = event.since.strftime("%Y-%m-%d") if one_day else f"{_utc(event.since)} to {_utc(event.until)}"
    lines = []
    for bot in event.bots:
        text = f"{bot.trades} trades, {bot.wins} won, PnL {signed(bot.pnl)} {event.currency}"
        if bot.open_positions:
            text += f", {bot.open_positions} open"
        if bot.equity is not None:
            text += f", equity {num(bot.equity)}"
        lines.append((bot.bot, text))
    trades = sum(b.trades for b in event.bots)
    wins = sum(b.wins for b in event.bots)
    pnl = sum(b.pnl for b in event.bots)
    lines.append(("Total", f"{trades} trades, {wins} won, PnL {signed(pnl)} {event.currency}"))
    return Rendered(title=_title(mode, f"Daily summary {period}"), lines=tuple(lines), **base)


def suppressed_message(counts: Mapping[str, int], *, mode: str | None = None) -> Rendered:
    total = sum(counts.values())
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return Rendered(
        kind="suppressed",
        title=_title(mode, "Notifications suppressed"),
        body=f"{total} notifications were not sent because of the rate limit ({detail}).",
        mode=mode,
        data={"counts": dict(counts)},
    )


def suppressed_note(counts: Mapping[str, int]) -> str:
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return f"{sum(counts.values())} earlier notifications suppressed by the rate limit ({detail})"


def to_plain(message: Rendered) -> str:
    parts = [message.title]
    parts.extend(f"{label}: {value}" for label, value in message.lines)
    if message.body:
        parts.extend(("", message.body))
    if message.note:
        parts.extend(("", message.note))
    return "\n".join(parts)


def escape_html(text: str) -> str:
    # Telegram's HTML mode needs exactly these three; quotes only matter inside attributes, which we never write.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_html(message: Rendered) -> str:
    parts = [f"<b>{escape_html(message.title)}</b>"]
    parts.extend(f"{escape_html(label)}: {escape_html(value)}" for label, value in message.lines)
    if message.body:
        parts.extend(("", f"<pre>{escape_html(message.body)}</pre>"))
    if message.note:
        parts.extend(("", f"<i>{escape_html(message.note)}</i>"))
    return "\n".join(parts)


_MD_RESERVED = set("_*[]()~`>#+-=|{}.!\\")


def escape_markdown_v2(text: str) -> str:
    return "".join("\\" + c if c in _MD_RESERVED else c for c in text)


def _escape_markdown_code(text: str) -> str:
    # Inside pre and code entities only the backtick and the backslash are special.
    return text.replace("\\", "\\\\").replace("`", "\\`")


def to_markdown_v2(message: Rendered) -> str:
    parts = [f"*{escape_markdown_v2(message.title)}*"]
    parts.extend(
        f"{escape_markdown_v2(label)}: {escape_markdown_v2(value)}" for label, value in message.lines
    )
    if message.body:
        parts.extend(("", f"```\n{_escape_markdown_code(message.body)}\n```"))
    if message.note:
        parts.extend(("", f"_{escape_markdown_v2(message.note)}_"))
    return "\n".join(parts)
