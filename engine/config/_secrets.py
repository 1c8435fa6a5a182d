"""``env:NAME`` references -> secret values, resolved only when a bot starts (never at load time)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dsl import Diagnostic, DiagnosticError

__all__ = ["resolve_secret"]


def resolve_secret(value: str, *, environ: Mapping[str, str] | None = None, what: str = "a secret") -> str:
    """The value of the environment variable named by ``env:NAME``.

    Raises :class:`DiagnosticError` (CFG009) when the variable is unset or empty, and CFG004 when
    ``value`` is not an ``env:`` reference. The error names the variable, never a value.
    """
    env = os.environ if environ is None else environ
    if not isinstance(value, str) or not value.startswith("env:") or not value[4:]:
        raise DiagnosticError([Diagnostic("CFG004", f"{what} must be an env:VARIABLE reference")])
    name = value[4:]
    secret = env.get(name, "")
    if not secret:
        state = "is empty" if name in env else "is not set"
        raise DiagnosticError(
            [
                Diagnostic(
                    "CFG009", f"environment variable {name} {state}; it holds {what} (written as {value})"
                )
            ]
        )
    return secret
