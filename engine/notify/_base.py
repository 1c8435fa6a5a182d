"""What every delivery channel provides, and the one error it raises."""

from __future__ import annotations

from typing import Protocol

from engine.notify._render import Rendered
from engine.notify.config import RateLimit, RetryPolicy

__all__ = ["Channel", "DeliveryError", "retry_after_header"]


class DeliveryError(Exception):
    """A message did not get through. ``retryable`` separates a busy or unreachable server (try again,
    after ``retry_after`` seconds when the server said so) from a refusal that will not change
    (bad token, unknown chat, rejected recipient). Messages never contain credentials."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Channel(Protocol):
    name: str
    events: frozenset[str]
    rate_limit: RateLimit
    retry: RetryPolicy

    async def send(self, message: Rendered) -> None:
        """Deliver one message or raise ``DeliveryError``."""
        ...


def retry_after_header(value: str | None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` header given in seconds (the date form is ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
