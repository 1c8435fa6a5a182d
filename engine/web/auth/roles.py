"""Roles and what each may do. Checked on the server for every route, page and action."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["PERMISSIONS", "Role", "permissions_of"]


class Role(StrEnum):
    VIEWER = "viewer"
    TRADER = "trader"
    ADMIN = "admin"


_VIEWER = frozenset({"read"})
_TRADER = _VIEWER | {"bots:control", "positions:close"}
_ADMIN = _TRADER | {
    "bots:write",
    "strategies:write",
    "risk:write",
    "models:write",
    "secrets:write",
    "users:write",
    "sessions:revoke",
}

PERMISSIONS: dict[Role, frozenset[str]] = {Role.VIEWER: _VIEWER, Role.TRADER: _TRADER, Role.ADMIN: _ADMIN}


def permissions_of(role: str) -> frozenset[str]:
    """The permissions of ``role``; an unknown role has none."""
    try:
        return PERMISSIONS[Role(role)]
    except ValueError:
        return frozenset()
