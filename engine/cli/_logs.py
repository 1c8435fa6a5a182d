"""Logging for the long-running commands (``engine run``, ``engine serve``, ``engine demo``): readable
lines on the console and the JSON-lines category files under ``$ENGINE_HOME/logs`` (trades, orders,
api_calls, risk, reload, errors, all), rotated at midnight UTC. Secrets are redacted by the handlers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["log_dir", "start_logging"]


def log_dir() -> Path:
    return Path(os.environ.get("ENGINE_HOME", "var")) / "logs"


def start_logging(*, retention_days: int = 14) -> None:
    from engine.observability import setup_logging

    # No default mode: the runtime binds each task's own (a line never claims "paper" for a live bot).
    setup_logging(log_dir(), mode=None, console="plain", retention_days=retention_days)  # type: ignore[arg-type]
    # httpx logs every request URL at INFO; a Telegram URL carries the bot token in its path.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
