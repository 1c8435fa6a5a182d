from __future__ import annotations

import io
import logging
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.observability import (
    SECRETS,
    RedactingFilter,
    SecretRegistry,
    bind_context,
    is_sensitive_key,
    log_event,
    redact_text,
    redact_value,
    register_secret,
    setup_logging,
)

TG_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXBhcnQ"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=3f9a0c&recvWindow=5",
            "GET https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=***&recvWindow=5",
        ),
        ("apiKey=abc123&x=1", "apiKey=***&x=1"),
        (
            '{"apiKey": "abc", "secret": "d\\"ef", "side": "buy"}',
            '{"apiKey": "***", "secret": "***", "side": "buy"}',
        ),
        ("{'password': 'hunter22', 'user': 'ann'}", "{'password': '***', 'user': 'ann'}"),
        ("headers: X-MBX-APIKEY: vmPUZE6mv9SD5VNHk4", "headers: X-MBX-APIKEY: ***"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: ***"),
        ("authorization='Basic dXNlcjpwYXNz'", "authorization='***'"),
        ("sent with bearer Zm9vYmFyYmF6", "sent with bearer ***"),
        (f"token {JWT} expired", "token *** expired"),
        (
            f"POST https://api.telegram.org/bot{TG_TOKEN}/sendMessage",
            "POST https://api.telegram.org/bot***/sendMessage",
        ),
        (f"bad token {TG_TOKEN}", "bad token ***"),
        ("postgresql://engine:pa55word@db:5432/engine", "postgresql://engine:***@db:5432/engine"),
        ("client_secret=xyz; path=/", "client_secret=***; path=/"),
        ("totp_secret: JBSWY3DPEHPK3PXP", "totp_secret: ***"),
        ("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----", "key:\n***"),
        # Ordinary trading lines stay readable.
        ("BTC/USDT long at 64210.5 qty=0.01 stop=63000", "BTC/USDT long at 64210.5 qty=0.01 stop=63000"),
        ("reload: 2 bots changed, 0 errors", "reload: 2 bots changed, 0 errors"),
    ],
)
def test_patterns(text: str, expected: str) -> None:
    assert redact_text(text, SecretRegistry()) == expected


def test_registered_values_are_masked_in_their_escaped_forms_too() -> None:
    registry = SecretRegistry()
    secret = "p@ss/w+rd=1 x"
    registry.register(secret)
    registry.register("abc")  # too short to mask without destroying ordinary words
    assert registry.scrub(f"raw {secret} url {quote(secret, safe='')} plus p%40ss%2Fw%2Brd%3D1+x") == (
        "raw *** url *** plus ***"
    )
    assert registry.scrub("abc abc") == "abc abc"
    assert secret not in repr(registry)


def test_registry_masks_longest_value_first() -> None:
    registry = SecretRegistry()
    registry.register_many(["secretvalue", "secretvalue-extended"])
    assert registry.scrub("a secretvalue-extended b") == "a *** b"


def test_redact_value_walks_containers() -> None:
    value = {
        "password": "hunter22",
        "nested": {"apiKey": "k", "list": ["https://u:pw@h/x", 3, None]},
        "when": __import__("datetime").date(2024, 5, 1),
        "none_secret": None,
        "obj": Path("/bot123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/x"),
    }
    assert redact_value(value, SecretRegistry()) == {
        "password": "***",
        "nested": {"apiKey": "***", "list": ["https://u:***@h/x", 3, None]},
        "when": "2024-05-01",
        "none_secret": None,
        "obj": "/bot***/x",
    }
    assert (
        is_sensitive_key("X-MBX-APIKEY") and is_sensitive_key("api_secret") and not is_sensitive_key("pair")
    )


@given(
    secret=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="*"), min_size=8, max_size=40),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_a_registered_secret_never_survives(secret: str, before: str, after: str) -> None:
    registry = SecretRegistry()
    registry.register(secret)
    out = redact_text(before + secret + after, registry)
    assert secret not in out
    nested = redact_value({"a": [before + secret], "b": {"c": secret + after}}, registry)
    assert secret not in repr(nested)


class ExchangeAuthError(Exception):
    """Shaped like ccxt's errors, which echo the exchange's reply and the signed request URL."""


SECRET_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET_API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SECRET_PASSWORD = "correct horse battery staple"
SECRET_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


@pytest.mark.parametrize("console", ["plain", "json", "rich"])
def test_secrets_never_reach_any_file_or_the_console(tmp_path: Path, console: str) -> None:
    registry = SecretRegistry()
    for value in (SECRET_API_KEY, SECRET_API_SECRET, SECRET_PASSWORD):
        registry.register(value)
    stream = io.StringIO()
    setup = setup_logging(tmp_path, mode="live", console=console, stream=stream, secrets=registry)  # type: ignore[arg-type]
    try:
        with bind_context(bot="btc"):
            orders = logging.getLogger("engine.orders")
            orders.info(f"using key {SECRET_API_KEY}")
            orders.info("login %s / %r", "ann", SECRET_PASSWORD)
            orders.warning(
                "request", extra={"headers": {"X-MBX-APIKEY": SECRET_API_KEY}, "note": SECRET_API_SECRET}
            )
            log_event(orders, "resolved", exchange={"apiKey": SECRET_API_KEY, "secret": SECRET_API_SECRET})
            log_event("engine.api_calls", "session", password=SECRET_PASSWORD, token=JWT)
            try:
                try:
                    raise KeyError(f"secret {SECRET_API_SECRET!r} rejected")
                except KeyError as inner:
                    raise ExchangeAuthError(
                        'binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."} '
                        f"GET https://api.binance.com/api/v3/account?timestamp=1715000000000&signature={SECRET_SIGNATURE}"
                        f" headers={{'X-MBX-APIKEY': '{SECRET_API_KEY}'}}"
                    ) from inner
            except ExchangeAuthError:
                orders.exception("account sync failed")
            logging.getLogger("httpx").info(
                'HTTP Request: POST https://api.telegram.org/bot%s/sendMessage "HTTP/1.1 401 Unauthorized"',
                TG_TOKEN,
            )
            logging.getLogger("engine.runtime").error("stack follows", stack_info=True)
        setup.flush()
    finally:
        setup.close()

    outputs = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.jsonl")}
    outputs["console"] = stream.getvalue()
    assert outputs["errors.jsonl"].count("\n") == 2
    assert "ExchangeAuthError" in outputs["orders.jsonl"] and "KeyError" in outputs["orders.jsonl"]
    assert "api.telegram.org/bot***/sendMessage" in outputs["api_calls.jsonl"]
    assert "account sync failed" in outputs["console"]
    forbidden = [
        SECRET_API_KEY,
        SECRET_API_SECRET,
        SECRET_PASSWORD,
        SECRET_SIGNATURE,
        JWT,
        TG_TOKEN.split(":")[1],
    ]
    for name, text in outputs.items():
        assert text, name
        for secret in forbidden:
            assert secret not in text, (name, secret)
            assert quote(secret, safe="") not in text, (name, secret)


def test_the_filter_alone_cleans_a_record_for_other_handlers() -> None:
    registry = SecretRegistry()
    registry.register(SECRET_API_SECRET)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "value %s", (SECRET_API_SECRET,), None)
    record.payload = {"secret": "s3cr3t-value"}
    assert RedactingFilter(registry).filter(record) is True
    assert record.getMessage() == "value ***"
    assert record.payload == {"secret": "***"}


def test_register_secret_feeds_the_process_registry() -> None:
    value = "process-wide-secret-value-123"
    register_secret(value)
    # Left registered: other tests in this process may rely on what they registered themselves.
    assert value in SECRETS
    assert redact_text(f"x {value} y") == "x *** y"


def test_secrets_registered_after_setup_are_masked(tmp_path: Path) -> None:
    # An empty registry handed to setup_logging is the one used, filled later by config resolution.
    registry = SecretRegistry()
    stream = io.StringIO()
    setup = setup_logging(None, mode="paper", console="plain", stream=stream, secrets=registry)
    try:
        registry.register("late-registered-secret")
        logging.getLogger("engine.orders").warning("value late-registered-secret")
    finally:
        setup.close()
    assert "value ***" in stream.getvalue()
    assert "late-registered-secret" not in SECRETS


@pytest.mark.parametrize(
    "blob", ["a" * 50_000, "a." * 25_000, "x-" * 25_000, "k=" * 25_000, '"a": "' * 8_000]
)
def test_long_blobs_redact_in_linear_time(blob: str) -> None:
    # Logged response bodies can be large; a quadratic pattern once took minutes on 20 kB. The time is not
    # asserted (tests measure behaviour, bench/ measures speed): a regression shows as a stalled suite.
    assert redact_text(blob, SecretRegistry()) == blob
