"""Failure throttling per address, in memory (per process): after ``limit`` failures in ``window``
seconds an address is refused until the oldest failure leaves the window. Per-account lockout lives in
the database (``users.failed_logins``/``locked_until``, see accounts.py) and always expires."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["SpentTokens", "Throttle"]


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


class SpentTokens:
    """Token ids (``jti``) already used, kept until the token would have expired anyway. Memory only,
    like the throttle: ``engine serve`` is one process, and a restart keeps nothing a pending token
    could reach (its 5 minutes are the bound)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._spent: dict[str, float] = {}

    def spend(self, jti: str, expires: float) -> bool:
        """Mark ``jti`` used; False if it already was. No await inside: one event loop, no race."""
        now = self._clock()
        for old in [k for k, until in self._spent.items() if until <= now]:
            del self._spent[old]
        if jti in self._spent:
            return False
        self._spent[jti] = expires
        return True

    def spent(self, jti: str) -> bool:
        return jti in self._spent
