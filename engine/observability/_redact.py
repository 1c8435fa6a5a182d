"""Keep secrets out of every log line.

Two nets, because either alone leaks: resolved secret values are registered when the configuration
resolves them (``register_secret``) and are replaced wherever they appear, even URL- or JSON-escaped;
and patterns catch credentials the engine never saw resolved (a ccxt error echoing a signed request
URL, a header dump, a token pasted into an error message). The filter rewrites the record itself
(message, arguments, extra fields, exception and stack text), so every handler after it sees clean text.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "SECRETS",
    "RedactingFilter",
    "SecretRegistry",
    "is_sensitive_key",
    "redact_text",
    "redact_value",
    "register_secret",
]

MASK = "***"

# Shorter values would blank out ordinary words everywhere; real keys, tokens and passwords are longer.
MIN_SECRET_LENGTH = 4

# Words that mark the value next to them as a credential (matched anywhere inside a key name, so
# `X-MBX-APIKEY`, `api_secret`, `bot_token` and `client_secret` are all caught).
_KEYWORDS = (
    r"api[_-]?key|apikey|secret|signature|passw(?:or)?d|passphrase|pwd|token|authorization|cookie"
    r"|private[_-]?key|access[_-]?key|totp"
)
# Starts only at the beginning of a word and is bounded, so a long blob without any keyword costs
# linear time (an unanchored lazy prefix made this quadratic: minutes for a 20 kB token).
_KEY = rf"(?<![\w.-])[\w.-]{{0,40}}?(?:{_KEYWORDS})[\w.-]{{0,40}}"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole block.
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        MASK,
    ),
    # Authorization headers with any scheme: the scheme word goes too, it is not worth keeping.
    (
        re.compile(
            r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:basic|bearer|digest|token|apikey)\s+)?[^\s\"',;]+"
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 " + MASK),
    # JWTs: base64url header starting with '{"', payload, optional signature.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # Telegram bot tokens, in API URLs and on their own.
    (re.compile(r"(?i)/bot\d+:[A-Za-z0-9_-]+"), "/bot" + MASK),
    (re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}"), MASK),
    # user:password@ in URLs.
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]{0,20}://)([^\s/:@]*):([^\s/@]+)@"), r"\1\2:" + MASK + "@"),
    # "key": "value" and 'key': 'value' (JSON, Python reprs), also key="value".
    (
        re.compile(rf"(?i)({_KEY}[\"']?\s*[:=]\s*)([\"'])(?:\\.|(?!\2).)*\2"),
        r"\1\2" + MASK + r"\2",
    ),
    # key=value (query strings, logfmt) and `Key: value` (headers), unquoted.
    (re.compile(rf"(?i)({_KEY}\s*[:=]\s*)(?![\"'{{\[])[^\s&\"',;)\]}}>]+"), r"\1" + MASK),
)

_SENSITIVE_KEY = re.compile(rf"(?i)(?:{_KEYWORDS})")


def is_sensitive_key(key: object) -> bool:
    """Whether a mapping key names a credential (``password``, ``apiKey``, ``X-MBX-APIKEY`` ...)."""
    return isinstance(key, str) and _SENSITIVE_KEY.search(key) is not None


class SecretRegistry:
    """Resolved secret values that must never be written anywhere. Thread-safe; values are kept in
    memory only and matched longest first, so a secret containing another is masked whole."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def register(self, value: str | None) -> None:
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        # The escaped spellings under which a value shows up in URLs and JSON bodies.
        forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
        with self._lock:
            if forms <= self._values:
                return
            self._values |= forms
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def register_many(self, values: Iterable[str | None]) -> None:
        for value in values:
            self.register(value)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __repr__(self) -> str:
        # Never the values themselves.
        return f"SecretRegistry({len(self._values)} values)"

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)


SECRETS = SecretRegistry()


def register_secret(value: str | None) -> None:
    """Register a resolved secret with the process-wide registry used by the log filter."""
    SECRETS.register(value)


def redact_text(text: str, registry: SecretRegistry | None = None) -> str:
    text = (SECRETS if registry is None else registry).scrub(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: object, registry: SecretRegistry | None = None, _depth: int = 0) -> object:
    """A copy of ``value`` that is safe to write: strings scrubbed, credential-named keys masked,
    containers walked; objects of other types become their scrubbed ``str``."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value, registry)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if _depth > 8:
        return redact_text(str(value), registry)
    if isinstance(value, Mapping):
        return {
            str(k): (MASK if is_sensitive_key(k) and v is not None else redact_value(v, registry, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, registry, _depth + 1) for v in value]
    return redact_text(str(value), registry)


# Attributes every LogRecord has; anything else on a record came from `extra=`.
STANDARD_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_DONE = "_engine_redacted"


class RedactingFilter(logging.Filter):
    """Rewrites a record in place so that no handler can write a secret. Never drops a record."""

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        super().__init__()
        self.registry = SECRETS if registry is None else registry

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _DONE, False):
            return True
        try:
            message = record.getMessage()
        except Exception:
            # Mismatched %-arguments must not turn a log call into a crash (or skip redaction).
            message = f"{record.msg!r} (bad log arguments: {record.args!r})"
        record.msg = redact_text(message, self.registry)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in STANDARD_RECORD_ATTRS and not key.startswith("_"):
                if is_sensitive_key(key) and value is not None:
                    setattr(record, key, MASK)
                else:
                    setattr(record, key, redact_value(value, self.registry))
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, self.registry)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, self.registry)
        setattr(record, _DONE, True)
        return True
