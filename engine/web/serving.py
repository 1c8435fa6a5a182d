"""How ``engine serve`` hands its connections to uvicorn: whose forwarded headers to believe.

uvicorn believes ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from 127.0.0.1 by default, so any
local process (or a proxy that passes the client's own header along) could pick the address the
login throttle and the audit log see. Here nothing is believed unless the operator names the proxies
(``engine serve --forwarded-allow-ips``): then uvicorn takes the client address and the scheme (which
turns HSTS on behind a TLS proxy) from those proxies' headers, and from theirs only.
"""

from __future__ import annotations

import ipaddress
from typing import Any

__all__ = ["ForwardedIpsError", "parse_forwarded_allow_ips", "proxy_settings"]


class ForwardedIpsError(ValueError):
    """A ``--forwarded-allow-ips`` entry that is neither an address, a network nor ``*``."""


def parse_forwarded_allow_ips(text: str | None) -> tuple[str, ...]:
    """The proxies named by a comma-separated list (addresses, networks, or ``*`` for any); empty for
    None or an empty text. Raises ForwardedIpsError naming the first entry that is neither."""
    if not text or not text.strip():
        return ()
    entries = tuple(item.strip() for item in text.split(",") if item.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ForwardedIpsError(
                f"--forwarded-allow-ips: {entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
            ) from None
    return entries


def proxy_settings(trusted: tuple[str, ...]) -> dict[str, Any]:
    """uvicorn keyword arguments: believe forwarded headers only from ``trusted`` (none by default)."""
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(trusted)}
