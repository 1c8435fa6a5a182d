"""A client that leaves before the answer is logged quietly; every other failure still raises."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from engine.web.disconnects import ClientGoneMiddleware, outermost

_SCOPE = {"type": "http", "method": "GET", "path": "/page"}


def _inner(*, read_first: bool, start_first: bool, error: Exception):  # type: ignore[no-untyped-def]
    """An application failing the way Starlette's BaseHTTPMiddleware does when nothing answered."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if read_first:
            await receive()
        if start_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise error

    return app


def _run(app, messages: list[Message]) -> list[Message]:  # type: ignore[no-untyped-def]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(dict(_SCOPE), receive, send), timeout=5))
    return sent


def test_a_client_that_left_ends_the_request_with_an_info_line(caplog: pytest.LogCaptureFixture) -> None:
    app = ClientGoneMiddleware(
        _inner(read_first=True, start_first=False, error=RuntimeError("No response returned."))
    )
    with caplog.at_level(logging.INFO, logger="engine.web"):
        sent = _run(app, [{"type": "http.disconnect"}])
    assert sent == []
    assert "GET /page: the client left before the answer" in caplog.text


@pytest.mark.parametrize(
    ("messages", "start_first", "error"),
    [
        (
            [{"type": "http.request", "body": b""}],
            False,
            RuntimeError("No response returned."),
        ),  # still there
        ([{"type": "http.disconnect"}], True, RuntimeError("No response returned.")),  # answer begun
        ([{"type": "http.disconnect"}], False, RuntimeError("something else broke")),
    ],
    ids=["client-still-there", "answer-already-started", "another-error"],
)
def test_every_other_failure_is_raised(messages: list[Message], start_first: bool, error: Exception) -> None:
    app = ClientGoneMiddleware(_inner(read_first=True, start_first=start_first, error=error))
    with pytest.raises(RuntimeError, match=str(error)):
        _run(app, messages)


def test_outermost_wraps_the_built_stack_error_middleware_included() -> None:
    app = FastAPI()
    outermost(app)
    stack = app.build_middleware_stack()
    assert isinstance(stack, ClientGoneMiddleware)
    assert type(stack.app).__name__ == "ServerErrorMiddleware"


def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    asyncio.run(ClientGoneMiddleware(inner)({"type": "websocket"}, None, None))  # type: ignore[arg-type]
    assert seen == ["websocket"]
