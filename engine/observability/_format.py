"""Two renderings of one record: a JSON object per line for files and tools, a readable line for people.

Both read the same attributes, which ``ContextFilter`` and ``RedactingFilter`` put on the record:
``category``, ``mode``, ``bot``, ``pair``, structured fields and already-scrubbed exception text.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from engine.observability._redact import STANDARD_RECORD_ATTRS

__all__ = ["FIELDS_ATTR", "JsonFormatter", "TextFormatter", "record_fields"]

# log_event puts its fields here, so that field names can never collide with LogRecord attributes.
FIELDS_ATTR = "event_fields"
_CONTEXT_ATTRS = ("category", "mode", "bot", "pair")
_NOT_FIELDS = STANDARD_RECORD_ATTRS | set(_CONTEXT_ATTRS) | {FIELDS_ATTR}


def iso_utc(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Structured fields of a record: ``extra=`` attributes, then ``log_event`` fields."""
    fields = {k: v for k, v in record.__dict__.items() if k not in _NOT_FIELDS and not k.startswith("_")}
    extra = record.__dict__.get(FIELDS_ATTR)
    if isinstance(extra, dict):
        fields.update(extra)
    return fields


def _exception_text(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    # RedactingFilter has normally filled exc_text already; format here only for records that
    # reached the formatter some other way.
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    return record.exc_text or None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, category, mode, bot, pair, logger, message, fields..., exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": iso_utc(record.created),
            "level": record.levelname,
            "category": getattr(record, "category", None),
            "mode": getattr(record, "mode", None),
            "bot": getattr(record, "bot", None),
            "pair": getattr(record, "pair", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            out.setdefault(key, value)
        exc = _exception_text(record, self)
        if exc:
            out["exc"] = exc
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str, separators=(",", ":"))


def _show(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return json.dumps(text, ensure_ascii=False) if (not text or any(c.isspace() for c in text)) else text


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z INFO  trades [paper btc BTC/USDT] message key=value``.

    With ``with_time_and_level=False`` (the rich console draws those columns itself) the line starts
    at the category.
    """

    def __init__(self, *, with_time_and_level: bool = True) -> None:
        super().__init__()
        self.with_time_and_level = with_time_and_level

    def format(self, record: logging.LogRecord) -> str:
        parts: list[str] = []
        if self.with_time_and_level:
            parts.append(f"{iso_utc(record.created)} {record.levelname:<7}")
        parts.append(str(getattr(record, "category", None) or record.name))
        context = [str(v) for v in (getattr(record, a, None) for a in ("mode", "bot", "pair")) if v]
        if context:
            parts.append("[" + " ".join(context) + "]")
        parts.append(record.getMessage())
        parts.extend(f"{k}={_show(v)}" for k, v in record_fields(record).items())
        line = " ".join(parts)
        exc = _exception_text(record, self)
        if exc:
            line += "\n" + exc
        if record.stack_info:
            line += "\n" + record.stack_info
        return line
