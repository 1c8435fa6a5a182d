"""Install the engine's log handlers: a readable console and one JSON-lines file per category.

Categories come from logger names (``engine.trades`` -> ``trades``), so code picks its category by
picking its logger. Every handler carries the context filter (mode, bot, pair, category) and the
redaction filter, so nothing reaches a console or a file without both.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from engine.observability._context import current_context, set_default_mode
from engine.observability._format import FIELDS_ATTR, JsonFormatter, TextFormatter
from engine.observability._redact import SECRETS, RedactingFilter, SecretRegistry
from engine.private_files import PrivateRotatingFileHandler, make_private_dir

__all__ = [
    "CATEGORIES",
    "ContextFilter",
    "LoggingSetup",
    "category_logger",
    "category_of",
    "log_event",
    "setup_logging",
]

CATEGORIES: tuple[str, ...] = ("trades", "orders", "api_calls", "risk", "reload", "errors")
GENERAL = "engine"

# Longest prefix wins. HTTP client libraries log request lines, which belong with the API calls.
_PREFIXES: dict[str, str] = {
    **{f"engine.{c}": c for c in CATEGORIES},
    "httpx": "api_calls",
    "httpcore": "api_calls",
    "ccxt": "api_calls",
}

ConsoleStyle = Literal["rich", "plain", "json", "none"]


def category_of(logger_name: str) -> str:
    for prefix in sorted(_PREFIXES, key=len, reverse=True):
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return _PREFIXES[prefix]
    return GENERAL


def category_logger(category: str, *suffix: str) -> logging.Logger:
    """``category_logger("trades")`` is ``logging.getLogger("engine.trades")``; unknown names are refused."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown log category {category!r}: expected one of {', '.join(CATEGORIES)}")
    return logging.getLogger(".".join(("engine", category, *suffix)))


class ContextFilter(logging.Filter):
    """Stamps category, mode, bot and pair on a record, unless the call passed them explicitly."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "category"):
            record.category = category_of(record.name)
        ctx = current_context()
        for attr, value in (("mode", ctx.mode), ("bot", ctx.bot), ("pair", ctx.pair)):
            if getattr(record, attr, None) is None:
                setattr(record, attr, value)
        return True


class _CategoryFilter(logging.Filter):
    def __init__(self, category: str) -> None:
        super().__init__()
        self.category = category

    def filter(self, record: logging.LogRecord) -> bool:
        if self.category == "errors":
            return record.levelno >= logging.ERROR or getattr(record, "category", None) == "errors"
        return getattr(record, "category", None) == self.category


@dataclass
class LoggingSetup:
    """What ``setup_logging`` installed; ``close()`` removes and closes it."""

    log_dir: Path | None
    handlers: tuple[logging.Handler, ...]
    mode: str

    def file_path(self, category: str) -> Path:
        if self.log_dir is None:
            raise ValueError("logging was set up without a log directory")
        return self.log_dir / f"{category}.jsonl"

    def flush(self) -> None:
        for handler in self.handlers:
            handler.flush()

    def close(self) -> None:
        global _installed
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
            handler.close()
        if _installed is self:
            _installed = None
            set_default_mode(None)


_installed: LoggingSetup | None = None


def _console_handler(style: ConsoleStyle, stream: TextIO) -> logging.Handler:
    if style == "rich":
        from rich.console import Console
        from rich.logging import RichHandler

        # Rich tracebacks would render the raw exception (and local variables) past the redaction
        # filter, so exceptions are printed as the already-scrubbed text instead.
        handler: logging.Handler = RichHandler(
            console=Console(file=stream, soft_wrap=True),
            rich_tracebacks=False,
            markup=False,
            show_path=False,
            log_time_format="%H:%M:%S",
        )
        handler.setFormatter(TextFormatter(with_time_and_level=False))
        return handler
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if style == "json" else TextFormatter())
    return handler


def setup_logging(
    log_dir: str | Path | None,
    *,
    mode: str,
    console: ConsoleStyle = "rich",
    level: int | str = logging.INFO,
    retention_days: int = 14,
    all_file: bool = True,
    stream: TextIO | None = None,
    secrets: SecretRegistry | None = None,
) -> LoggingSetup:
    """Configure the root logger for the engine and return a handle to undo it.

    - console: ``rich`` (coloured), ``plain`` (one text line per record), ``json`` or ``none``; it
      writes to ``stream`` (standard error by default).
    - files (when ``log_dir`` is given): ``<category>.jsonl`` for trades, orders, api_calls, risk and
      reload; ``errors.jsonl`` for every record at ERROR or above from any logger; ``all.jsonl`` for
      everything (``all_file=False`` to skip). Rotated at midnight UTC, ``retention_days`` old files kept.
    - ``mode`` tags every line unless a task binds its own (see ``bind_context``).

    Calling it again replaces what the previous call installed.
    """
    global _installed
    set_default_mode(mode)
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    if console not in ("rich", "plain", "json", "none"):
        raise ValueError(f"unknown console style {console!r}: expected rich, plain, json or none")
    numeric_level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")

    if _installed is not None:
        _installed.close()
        set_default_mode(mode)

    redacting = RedactingFilter(SECRETS if secrets is None else secrets)
    context = ContextFilter()
    handlers: list[logging.Handler] = []
    if console != "none":
        handlers.append(_console_handler(console, stream or sys.stderr))

    directory: Path | None = None
    file_handlers: list[tuple[logging.Handler, str | None]] = []
    if log_dir is not None:
        directory = Path(log_dir)
        make_private_dir(directory)  # logs carry audit trails and order details: 0700, files 0600
        json_format = JsonFormatter()
        names: list[str | None] = [*CATEGORIES, None] if all_file else list(CATEGORIES)
        for category in names:
            handler = PrivateRotatingFileHandler(
                directory / f"{category or 'all'}.jsonl",
                when="midnight",
                utc=True,
                backupCount=retention_days,
                encoding="utf-8",
                delay=True,
            )
            handler.setFormatter(json_format)
            file_handlers.append((handler, category))

    for handler, category in [(h, None) for h in handlers] + file_handlers:
        handler.setLevel(numeric_level)
        # Order matters: context first (it reads the task's variables and sets the category the
        # category filter needs), then redaction, which every handler gets.
        handler.addFilter(context)
        handler.addFilter(redacting)
        if category is not None:
            handler.addFilter(_CategoryFilter(category))
    handlers.extend(h for h, _ in file_handlers)

    root = logging.getLogger()
    root.setLevel(numeric_level)
    for handler in handlers:
        root.addHandler(handler)
    _installed = LoggingSetup(log_dir=directory, handlers=tuple(handlers), mode=mode)
    return _installed


def log_event(
    logger: logging.Logger | str,
    message: str,
    *,
    level: int = logging.INFO,
    exc_info: Any = None,
    bot: str | None = None,
    pair: str | None = None,
    mode: str | None = None,
    **fields: Any,
) -> None:
    """Log ``message`` with structured ``fields`` (JSON keys in the files, ``key=value`` on the console).

    ``bot``, ``pair`` and ``mode`` override the task's context for this line only.
    """
    target = logging.getLogger(logger) if isinstance(logger, str) else logger
    if not target.isEnabledFor(level):
        return
    extra: Mapping[str, Any] = {
        FIELDS_ATTR: fields,
        **{k: v for k, v in (("bot", bot), ("pair", pair), ("mode", mode)) if v is not None},
    }
    target.log(level, message, exc_info=exc_info, extra=extra, stacklevel=2)
