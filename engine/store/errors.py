"""The store's exceptions. Each carries what a caller needs to act or to tell the user."""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "DatabaseUnavailableError",
    "LeaseHeldError",
    "LeaseLostError",
    "OrderNotFoundError",
    "StoreError",
]


class StoreError(Exception):
    """Base of every error raised by ``engine.store``."""


class DatabaseUnavailableError(StoreError):
    """The database URL is not supported or the server cannot be reached."""


class OrderNotFoundError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no order with {key}")
        self.key = key


class LeaseHeldError(StoreError):
    """Someone else holds the lease and it has not expired: this engine must not start."""

    def __init__(self, name: str, owner: str, expires_at: datetime) -> None:
        super().__init__(
            f"lease {name!r} is held by {owner!r} until {expires_at.isoformat(timespec='seconds')}; "
            "another engine is running on this database and account"
        )
        self.name = name
        self.owner = owner
        self.expires_at = expires_at


class LeaseLostError(StoreError):
    """A renewal found that the lease expired and was taken over: the old owner must stop acting."""

    def __init__(self, name: str, owner: str) -> None:
        super().__init__(f"lease {name!r} is no longer held by {owner!r}")
        self.name = name
        self.owner = owner
