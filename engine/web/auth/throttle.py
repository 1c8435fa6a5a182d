"""Failure throttling per address, in memory (per process): after ``limit`` failures in ``window``
seconds an address is refused until the oldest failure leaves the window. Per-account lockout lives in
the database (``users.failed_logins``/``locked_until``, see accounts.py) and always expires."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["Throttle"]


class Throttle:
    def __init__(
        self, limit: int = 20, window: float = 900.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, key: str) -> bool:
        return len(self._recent(key)) >= self.limit

    def fail(self, key: str) -> None:
        self._recent(key).append(self._clock())

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)
