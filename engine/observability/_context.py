"""Who is logging: the run mode, the bot and the pair, carried by context variables.

Context variables follow asyncio tasks (each task starts with a copy of its creator's context) and
``asyncio.to_thread``, so a task per bot that binds its name once tags every line it logs, and two
bots running on one loop never see each other's names.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["MODES", "LogContext", "bind_context", "current_context", "set_context", "set_default_mode"]

MODES: tuple[str, ...] = ("backtest", "paper", "testnet", "live")

_UNSET = object()

_mode: ContextVar[str | None] = ContextVar("engine_log_mode", default=None)
_bot: ContextVar[str | None] = ContextVar("engine_log_bot", default=None)
_pair: ContextVar[str | None] = ContextVar("engine_log_pair", default=None)

# The process-wide mode chosen by setup_logging; a context value, when bound, wins over it.
_default_mode: str | None = None


@dataclass(frozen=True, slots=True)
class LogContext:
    mode: str | None
    bot: str | None
    pair: str | None


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def set_default_mode(mode: str | None) -> None:
    global _default_mode
    _default_mode = None if mode is None else check_mode(mode)


def current_context() -> LogContext:
    return LogContext(mode=_mode.get() or _default_mode, bot=_bot.get(), pair=_pair.get())


def set_context(*, mode: object = _UNSET, bot: object = _UNSET, pair: object = _UNSET) -> None:
    """Set context values for the rest of the current task (or thread). ``None`` clears a value."""
    if mode is not _UNSET:
        _mode.set(None if mode is None else check_mode(str(mode)))
    if bot is not _UNSET:
        _bot.set(None if bot is None else str(bot))
    if pair is not _UNSET:
        _pair.set(None if pair is None else str(pair))


@contextmanager
def bind_context(*, mode: object = _UNSET, bot: object = _UNSET, pair: object = _UNSET) -> Iterator[None]:
    """Set context values inside a ``with`` block and restore the previous ones afterwards."""
    tokens = []
    if mode is not _UNSET:
        tokens.append((_mode, _mode.set(None if mode is None else check_mode(str(mode)))))
    if bot is not _UNSET:
        tokens.append((_bot, _bot.set(None if bot is None else str(bot))))
    if pair is not _UNSET:
        tokens.append((_pair, _pair.set(None if pair is None else str(pair))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
