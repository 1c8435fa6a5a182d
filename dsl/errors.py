"""One location type and one error type for every user-facing problem.

Every error the product reports (YAML syntax, schema, DSL parse, DSL types, data) is a
:class:`Diagnostic` with a code, a message and a :class:`Span`, rendered like a compiler:

    strategies/ema_rsi.yaml:17:58: error[DSL004]: unknown input 'rsi_mx' (did you mean 'rsi_max'?)
       17 |   long: crosses_above(fast_ma, slow_ma) and rsi(close, 14) < rsi_mx and trend_ok
          |                                                          ^^^^^^
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "Diagnostic",
    "DiagnosticError",
    "Span",
    "did_you_mean",
    "render_diagnostics",
]


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file. Lines and columns are 1-based; ``end_col`` is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    @classmethod
    def point(cls, file: str, line: int, col: int, width: int = 1) -> Span:
        return cls(file, line, col, line, col + max(width, 1))

    def shifted(self, file: str, line: int, col: int) -> Span:
        """Place a span measured inside an embedded text (a DSL string) at ``line``/``col`` of ``file``.

        The first line of the embedded text starts at column ``col``; later lines keep their own columns.
        """
        first_col = col - 1 if self.line == 1 else 0
        last_col = col - 1 if self.end_line == 1 else 0
        return Span(
            file,
            line + self.line - 1,
            self.col + first_col,
            line + self.end_line - 1,
            self.end_col + last_col,
        )

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One error (or warning) with a stable code, a message and where it is."""

    code: str
    message: str
    span: Span | None = None
    severity: str = "error"
    notes: tuple[str, ...] = field(default=())

    def with_span(self, span: Span | None) -> Diagnostic:
        return replace(self, span=span)

    def headline(self) -> str:
        where = str(self.span) if self.span else "<input>"
        return f"{where}: {self.severity}[{self.code}]: {self.message}"

    def render(self, source: str | None = None) -> str:
        """The headline, then (when the source text is known) the line with a caret under the span."""
        out = [self.headline()]
        if source is not None and self.span is not None:
            lines = source.splitlines()
            if 1 <= self.span.line <= len(lines):
                text = lines[self.span.line - 1].replace("\t", " ")
                number = str(self.span.line)
                gutter = " " * len(number)
                end = self.span.end_col if self.span.end_line == self.span.line else len(text) + 1
                width = max(1, end - self.span.col)
                out.append(f" {number} | {text}")
                out.append(f" {gutter} | {' ' * (self.span.col - 1)}{'^' * width}")
        out.extend(f"  = note: {note}" for note in self.notes)
        return "\n".join(out)

    def to_json(self) -> dict[str, object]:
        span = self.span
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": span.file if span else None,
            "line": span.line if span else None,
            "col": span.col if span else None,
            "end_line": span.end_line if span else None,
            "end_col": span.end_col if span else None,
        }


class DiagnosticError(Exception):
    """Raised when input is invalid; carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.headline() for d in self.diagnostics) or "invalid input")


def render_diagnostics(diagnostics: Iterable[Diagnostic], sources: dict[str, str] | None = None) -> str:
    sources = sources or {}
    return "\n".join(d.render(sources.get(d.span.file) if d.span else None) for d in diagnostics)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix for the closest candidate, or '' when none is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
