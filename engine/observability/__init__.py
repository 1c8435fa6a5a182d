"""Structured logging for the engine: categories, context, JSON-lines files and secret redaction.

    from engine.observability import setup_logging, category_logger, log_event, bind_context

    setup_logging("var/logs", mode="paper", console="rich", retention_days=14)
    trades = category_logger("trades")                 # logger "engine.trades" -> trades.jsonl
    with bind_context(bot="btc-ema", pair="BTC/USDT"):
        log_event(trades, "trade opened", side="long", price=64210.5, amount=0.01)

Secrets resolved by the configuration go through ``register_secret`` and never reach a handler.
Only the standard library is imported here; ``rich`` is imported when a rich console is set up.
"""

from __future__ import annotations

from engine.observability._context import MODES, LogContext, bind_context, current_context, set_context
from engine.observability._format import JsonFormatter, TextFormatter
from engine.observability._redact import (
    MASK,
    SECRETS,
    RedactingFilter,
    SecretRegistry,
    is_sensitive_key,
    redact_text,
    redact_value,
    register_secret,
)
from engine.observability._setup import (
    CATEGORIES,
    ContextFilter,
    LoggingSetup,
    category_logger,
    category_of,
    log_event,
    setup_logging,
)

__all__ = [
    "CATEGORIES",
    "MASK",
    "MODES",
    "SECRETS",
    "ContextFilter",
    "JsonFormatter",
    "LogContext",
    "LoggingSetup",
    "RedactingFilter",
    "SecretRegistry",
    "TextFormatter",
    "bind_context",
    "category_logger",
    "category_of",
    "current_context",
    "is_sensitive_key",
    "log_event",
    "redact_text",
    "redact_value",
    "register_secret",
    "set_context",
    "setup_logging",
]
