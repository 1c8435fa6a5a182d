"""The one error type of the ML engine: a clear sentence for the user, never a traceback."""

from __future__ import annotations

__all__ = ["MLError"]


class MLError(Exception):
    """Bad input or state for training or prediction (too little data, one class, a corrupted file...).

    ``code`` names the kind of problem (ML001...; docs/ml.md lists them)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"error[{code}]: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[MLError], tuple[str, str]]:
        # Raised in worker processes and re-raised here: keep both arguments through pickling.
        return (MLError, (self.code, self.message))
