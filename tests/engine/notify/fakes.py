"""Local stand-ins for the services the notifier talks to, each on 127.0.0.1 in a thread:
a Telegram Bot API that parses markup as strictly as the real one, a webhook receiver that checks
the HMAC signature, and an SMTP server that speaks enough SMTP (EHLO, STARTTLS, AUTH, MAIL, RCPT,
DATA) for smtplib."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class MarkupError(ValueError):
    pass


# -- Telegram's two markup languages, checked the way the Bot API does --------------------------------


class _TelegramHTML(HTMLParser):
    ALLOWED = frozenset({"b", "i", "pre", "code"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED or attrs:
            raise MarkupError(f'Unsupported start tag "{tag}"')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            raise MarkupError(f'Unexpected end tag "{tag}"')

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_telegram_html(text: str) -> str:
    """The visible text, or MarkupError where Telegram would answer "can't parse entities"."""
    for match in re.finditer(r"&[^;\s]*;?", text):
        if not re.fullmatch(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);", match.group()):
            raise MarkupError(f"Unsupported HTML entity at byte offset {match.start()}")
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise MarkupError(f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]}"')
    outside_tags = re.sub(r"</?(?:b|i|pre|code)>", "", text)
    if "<" in outside_tags or ">" in outside_tags:
        raise MarkupError("Unescaped < or > outside a tag")
    return "".join(parser.text)


_MD_RESERVED = set("_*[]()~`>#+-=|{}.!")


def parse_markdown_v2(text: str) -> str:
    """The visible text, or MarkupError for an unescaped reserved character or an unclosed entity."""
    out: list[str] = []
    open_entities: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise MarkupError("Can't find end of Pre entity")
            body = text[i + 3 : end]
            # The first line names the language (may be empty); a newline before the closing fence is dropped.
            if "\n" in body:
                language, body = body.split("\n", 1)
                if not re.fullmatch(r"[\w+-]*", language):
                    raise MarkupError("Bad pre language")
                body = body.removesuffix("\n")
            j = 0
            while j < len(body):
                if body[j] == "\\":
                    if j + 1 >= len(body) or body[j + 1] not in "`\\":
                        raise MarkupError("Character '\\' inside pre must escape ` or \\")
                    out.append(body[j + 1])
                    j += 2
                elif body[j] == "`":
                    raise MarkupError("Unescaped ` inside pre")
                else:
                    out.append(body[j])
                    j += 1
            i = end + 3
        elif c == "\\":
            if i + 1 >= len(text) or not (1 <= ord(text[i + 1]) <= 126):
                raise MarkupError("Character '\\' must escape an ASCII character")
            out.append(text[i + 1])
            i += 2
        elif c in "*_":
            if open_entities and open_entities[-1] == c:
                open_entities.pop()
            else:
                open_entities.append(c)
            i += 1
        elif c in _MD_RESERVED:
            raise MarkupError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        else:
            out.append(c)
            i += 1
    if open_entities:
        raise MarkupError(f"Can't find end of {open_entities[-1]} entity")
    return "".join(out)


# -- HTTP servers ---------------------------------------------------------------------------------------


@contextmanager
def _serve(server: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class FakeTelegram:
    token: str
    received: list[dict[str, Any]] = field(default_factory=list)
    visible: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    # Answers to give before behaving: ("429", retry_after) / ("500", None) / ("parse", None).
    script: list[tuple[str, float | None]] = field(default_factory=list)
    url: str = ""
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests += 1
        match = re.fullmatch(r"/bot([^/]+)/sendMessage", path)
        if match is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if match.group(1) != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        with self.lock:
            step = self.script.pop(0) if self.script else None
            if step is not None and step[0] == "429":
                self.times.append(time.monotonic())
                retry = int(step[1] or 1)
                return 429, {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry}",
                    "parameters": {"retry_after": retry},
                }
            if step is not None and step[0] == "500":
                return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
            if not isinstance(body.get("chat_id"), str | int) or not isinstance(body.get("text"), str):
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message text is empty",
                }
            mode = body.get("parse_mode")
            try:
                if step is not None and step[0] == "parse" and mode:
                    raise MarkupError("forced")
                if mode == "HTML":
                    shown = parse_telegram_html(body["text"])
                elif mode == "MarkdownV2":
                    shown = parse_markdown_v2(body["text"])
                elif mode is None:
                    shown = body["text"]
                else:
                    raise MarkupError(f"unsupported parse_mode {mode}")
            except MarkupError as exc:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": f"Bad Request: can't parse entities: {exc}",
                }
            if len(shown) > 4096:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message is too long",
                }
            self.received.append(body)
            self.visible.append(shown)
            self.times.append(time.monotonic())
            message_id = len(self.received)
        return 200, {
            "ok": True,
            "result": {
                "message_id": message_id,
                "chat": {"id": body["chat_id"]},
                "date": int(time.time()),
                "text": shown,
            },
        }


def _handler(answer: Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, str], bytes]]) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            status, headers, body = answer(self, raw)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def fake_telegram(token: str) -> Iterator[FakeTelegram]:
    fake = FakeTelegram(token=token)

    def answer(handler: BaseHTTPRequestHandler, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        status, reply = fake.answer(handler.path, body if isinstance(body, dict) else {})
        return status, {"Content-Type": "application/json"}, json.dumps(reply).encode()

    with _serve(ThreadingHTTPServer(("127.0.0.1", 0), _handler(answer))) as url:
        fake.url = url
        yield fake


@dataclass
class FakeWebhook:
    secret: str | None
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    rejected: int = 0
    # Statuses to answer before accepting, e.g. [503, 429].
    script: list[int] = field(default_factory=list)
    # The delivery id of every request, accepted or not.
    attempts: list[str] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], raw: bytes) -> int:
        with self.lock:
            self.attempts.append(headers.get("x-engine-delivery", ""))
            if self.secret is not None:
                timestamp = headers.get("x-engine-timestamp", "")
                expected = (
                    "sha256="
                    + hmac.new(
                        self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256
                    ).hexdigest()
                )
                fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
                if not (fresh and hmac.compare_digest(expected, headers.get("x-engine-signature", ""))):
                    self.rejected += 1
                    return 401
            if self.script:
                return self.script.pop(0)
            self.received.append(json.loads(raw))
            self.headers.append(headers)
            return 204


@contextmanager
def fake_webhook(secret: str | None) -> Iterator[FakeWebhook]:
    fake = FakeWebhook(secret=secret)

    def answer(handler: BaseHTTPRequestHandler, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        status = fake.answer({k.lower(): v for k, v in handler.headers.items()}, raw)
        headers = {"Retry-After": "0"} if status == 429 else {}
        return status, headers, b""

    with _serve(ThreadingHTTPServer(("127.0.0.1", 0), _handler(answer))) as url:
        fake.url = url + "/hooks/engine"
        yield fake


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


# -- SMTP -----------------------------------------------------------------------------------------------


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message
    user: str | None
    tls: bool


@dataclass
class FakeSMTP:
    username: str | None = None
    password: str | None = None
    tls_context: ssl.SSLContext | None = None
    mails: list[Mail] = field(default_factory=list)
    # Reply codes to give to MAIL FROM before accepting (e.g. [451]).
    script: list[int] = field(default_factory=list)
    auth_failures: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _SMTPHandler(socketserver.StreamRequestHandler):
    server: _SMTPServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        fake = self.server.fake
        tls = False
        user: str | None = None
        sender: str | None = None
        recipients: list[str] = []
        self.reply("220 fake-smtp ready")
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                lines = ["fake-smtp"]
                if fake.tls_context is not None and not tls:
                    lines.append("STARTTLS")
                if fake.username is not None:
                    lines.append("AUTH PLAIN LOGIN")
                for i, text in enumerate(lines):
                    self.reply(f"250{'-' if i < len(lines) - 1 else ' '}{text}")
            elif verb == "STARTTLS" and fake.tls_context is not None and not tls:
                self.reply("220 go ahead")
                self.connection = fake.tls_context.wrap_socket(self.connection, server_side=True)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb")
                tls = True
            elif verb == "AUTH":
                mechanism, _, initial = arg.partition(" ")
                if mechanism.upper() == "PLAIN":
                    if not initial:
                        self.reply("334 ")
                        initial = self.rfile.readline().decode().strip()
                    parts = base64.b64decode(initial).decode().split("\0")
                    name, secret = parts[1], parts[2]
                elif mechanism.upper() == "LOGIN":
                    self.reply("334 " + base64.b64encode(b"Username:").decode())
                    name = base64.b64decode(self.rfile.readline().strip()).decode()
                    self.reply("334 " + base64.b64encode(b"Password:").decode())
                    secret = base64.b64decode(self.rfile.readline().strip()).decode()
                else:
                    self.reply("504 unrecognised authentication type")
                    continue
                if (name, secret) == (fake.username, fake.password):
                    user = name
                    self.reply("235 authenticated")
                else:
                    with fake.lock:
                        fake.auth_failures += 1
                    self.reply("535 5.7.8 authentication credentials invalid")
            elif verb == "MAIL":
                with fake.lock:
                    code = fake.script.pop(0) if fake.script else None
                if code is not None:
                    self.reply(f"{code} try again later")
                    continue
                if fake.username is not None and user is None:
                    self.reply("530 authentication required")
                    continue
                sender = re.sub(r"(?i)^from:\s*<?([^>\s]*)>?.*$", r"\1", arg)
                recipients = []
                self.reply("250 ok")
            elif verb == "RCPT":
                recipients.append(re.sub(r"(?i)^to:\s*<?([^>\s]*)>?.*$", r"\1", arg))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                data = bytearray()
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b".\n", b""):
                        break
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                with fake.lock:
                    fake.mails.append(
                        Mail(sender or "", recipients, message_from_bytes(bytes(data)), user, tls)
                    )
                self.reply("250 queued")
            elif verb == "RSET" or verb == "NOOP":
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


class _SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeSMTP) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _SMTPHandler)


@contextmanager
def fake_smtp(fake: FakeSMTP) -> Iterator[FakeSMTP]:
    server = _SMTPServer(fake)
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll, yielding to the event loop, until ``predicate()`` holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()
