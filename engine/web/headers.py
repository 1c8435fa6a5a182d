"""Security headers on every HTTP response, and a Content-Security-Policy the pages satisfy.

Every response: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (and CSP
``frame-ancestors 'none'``), ``Referrer-Policy: no-referrer`` (a WebSocket URL carries a token),
``Cross-Origin-Opener-Policy: same-origin``, and ``Strict-Transport-Security`` when the request came
over TLS (directly, or through a proxy named by ``--forwarded-allow-ips`` that says so).

API answers (JSON) get ``default-src 'none'``: nothing in them is ever to be run or loaded.

HTML pages (NiceGUI) get :func:`page_policy`. NiceGUI writes a few inline ``<script>`` blocks into
each page (the import map, the element tree, the Vue set-up) whose content differs per page, so hashes
cannot cover them: each HTML response gets a fresh nonce, added to every ``<script`` tag of the page.
That is safe because NiceGUI HTML-escapes (``<`` as ``\\u003c``) everything user-supplied it writes
into the page, so the only ``<script`` tags are its own. What the policy must still allow (docs/security.md):

- ``'unsafe-eval'`` in ``script-src``: Vue compiles the components' templates in the browser and
  NiceGUI runs server-sent JavaScript (``run_javascript``, clipboard, downloads) with ``new Function``;
- ``'unsafe-inline'`` in ``style-src``: Quasar sets inline styles and the Tailwind runtime adds
  ``<style>`` elements as it meets classes.

Injected markup still cannot run: an inline event handler (``onerror=``) or a ``<script>`` without
the nonce is refused, and nothing loads from another origin.
"""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["API_POLICY", "SecurityHeadersMiddleware", "add_nonce", "page_policy"]

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=31536000"
_COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])", re.IGNORECASE)


def page_policy(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}' 'unsafe-eval'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def add_nonce(html: bytes, nonce: str) -> bytes:
    """Every ``<script`` opening tag of ``html`` with ``nonce="..."``."""
    return _SCRIPT_TAG.sub(b'<script nonce="' + nonce.encode() + b'"', html)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.lower().startswith(b"text/html") for k, v in headers)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"
        head = scope.get("method") == "HEAD"  # no body to add the nonce to: the headers only
        start: Message | None = None
        body: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"
                ]
                headers += list(_COMMON)
                if tls:
                    headers.append((b"strict-transport-security", HSTS.encode()))
                message = {**message, "headers": headers}
                if _is_html(headers) and not head:
                    start = message  # held until the whole page is here: its scripts get the nonce
                    return
                policy = page_policy(secrets.token_urlsafe(18)) if head else API_POLICY
                headers.append((b"content-security-policy", policy.encode()))
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            nonce = secrets.token_urlsafe(18)
            page = add_nonce(b"".join(body), nonce)
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers += [
                (b"content-length", str(len(page)).encode()),
                (b"content-security-policy", page_policy(nonce).encode()),
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": page, "more_body": False})

        await self.app(scope, receive, send_with_headers)
