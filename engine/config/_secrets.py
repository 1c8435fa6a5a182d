"""Secret references -> secret values, resolved only when a bot starts (never at load time).

``env:NAME`` reads the environment variable NAME; ``store:NAME`` reads the key saved under NAME in
the engine's encrypted key store (``api_secrets``; the caller decrypts it and passes the mapping)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dsl import Diagnostic, DiagnosticError

__all__ = ["resolve_secret"]


def resolve_secret(
    value: str,
    *,
    environ: Mapping[str, str] | None = None,
    store: Mapping[str, str] | None = None,
    what: str = "a secret",
) -> str:
    """The secret that ``value`` (``env:NAME`` or ``store:NAME``) refers to.

    Raises :class:`DiagnosticError`: CFG009 when the variable or stored key is missing or empty,
    CFG004 when ``value`` is not a reference. The error names the reference, never a value.
    """
    if isinstance(value, str) and value.startswith("store:") and value[6:]:
        name = value[6:]
        secret = (store or {}).get(name, "")
        if not secret:
            raise DiagnosticError(
                [
                    Diagnostic(
                        "CFG009",
                        f"the key store has no secret named {name}; it holds {what} (written as {value}): "
                        "save it in the web app (Users & keys) or with PUT /config/secrets/" + name,
                    )
                ]
            )
        return secret
    env = os.environ if environ is None else environ
    if not isinstance(value, str) or not value.startswith("env:") or not value[4:]:
        raise DiagnosticError(
            [Diagnostic("CFG004", f"{what} must be an env:VARIABLE or store:NAME reference")]
        )
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
