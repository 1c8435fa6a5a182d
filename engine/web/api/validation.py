"""Request bodies the API refuses cleanly, and refusals that repeat nothing of what was sent.

- JSON may spell a lone UTF-16 surrogate (``"\\ud800"``): valid JSON, but not text that can be
  hashed, encrypted, stored or even written back in an error. Such a body is refused as invalid JSON
  (422) before any route sees it, instead of failing deep inside (a 500 with a traceback).
- FastAPI's default 422 answer echoes each refused value (``input``) and pydantic's ``ctx``: for a
  password or an API key that is the secret itself, sent back and possibly logged by whatever sits
  in front. Here a refusal carries where (``loc``), what kind (``type``) and why (``msg``) only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

__all__ = ["StrictJsonRoute", "has_lone_surrogate", "validation_error_handler"]


def has_lone_surrogate(value: Any) -> bool:
    """True if any string (or key) in a decoded JSON value holds an unpaired surrogate. ``json.loads``
    joins a valid pair into one code point, so any surrogate left is a lone one."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            decoded = json.loads(await self.body())
            if has_lone_surrogate(decoded):
                # FastAPI turns a JSONDecodeError into a 422 "json_invalid"; the document is not kept.
                raise json.JSONDecodeError("a string holds a lone UTF-16 surrogate", "", 0)
            self._json = decoded
        return self._json


class StrictJsonRoute(APIRoute):
    """The route class of every API router: bodies are parsed by :class:`_StrictJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJsonRequest(request.scope, request.receive))

        return strict


def _safe(part: Any) -> str | int:
    if isinstance(part, int):
        return part
    # A key named by the client may itself be an unpaired surrogate (an unknown field's name).
    return str(part).encode("utf-8", "replace").decode("utf-8")


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 with the location, type and message of each error; never the submitted value."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "type": str(error.get("type", "")),
            "loc": [_safe(p) for p in error.get("loc", ())],
            "msg": _safe(error.get("msg", "")),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)
