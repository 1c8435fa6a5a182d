"""A token bucket: ``capacity`` messages at once, refilled at ``capacity / per_seconds`` per second."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    def __init__(
        self, capacity: int, per_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs capacity >= 1 and a positive period")
        self.capacity = float(capacity)
        self.rate = capacity / per_seconds
        self._clock = clock
        self._tokens = float(capacity)
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def try_take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until one message may pass (0 when one may pass now)."""
        self._refill()
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate
