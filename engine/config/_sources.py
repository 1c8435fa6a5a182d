"""A YAML scalar holding a DSL expression -> a ``dsl.Source`` that knows where each character sits.

The scalar's value differs from its text in the file: quotes, escapes, folded line breaks and block
indentation. Each value character is matched, in order, to the file character it came from; runs
that continue on one file line become the Source's segments, so DSL errors land on the exact column.
"""

from __future__ import annotations

from bisect import bisect_right

from dsl import Source
from engine.config._yaml import YamlNode

__all__ = ["LineIndex", "scalar_source"]

_SPACE = " \t\n"


class LineIndex:
    """Character offset -> (line, column), both 1-based, for one file's text."""

    def __init__(self, text: str):
        self.starts = [0]
        self.starts.extend(index + 1 for index, char in enumerate(text) if char == "\n")

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1


def _body_start(node: YamlNode, text: str) -> int:
    """Offset of the first character that can belong to the value."""
    if node.style in ("'", '"'):
        return node.start + 1
    if node.style in ("|", ">"):
        newline = text.find("\n", node.start, node.end)
        return node.end if newline < 0 else newline + 1
    return node.start


def _offsets(value: str, text: str, start: int, end: int) -> list[int]:
    """File offset of each character of ``value`` by greedy matching inside ``text[start:end]``."""
    out: list[int] = []
    cursor = start
    for char in value:
        if char in _SPACE:
            # Folded line breaks and indentation collapse into one value character.
            out.append(cursor)
            if cursor < end and text[cursor] in _SPACE:
                cursor += 1
            continue
        found = text.find(char, cursor, end)
        if found < 0:  # produced by an escape sequence: keep the current position
            out.append(min(cursor, max(end - 1, start)))
            continue
        out.append(found)
        cursor = found + 1
    return out


def scalar_source(node: YamlNode, value: str, file: str, text: str, lines: LineIndex) -> Source:
    """The Source for ``value`` (the scalar's string value) located inside ``text``."""
    offsets = _offsets(value, text, _body_start(node, text), node.end)
    if not offsets:
        return Source(value, file, ((0, node.line, node.col),))
    segments: list[tuple[int, int, int]] = []
    previous: tuple[int, int] | None = None
    for index, offset in enumerate(offsets):
        line, col = lines.position(offset)
        if previous is None or previous != (line, col - 1):
            segments.append((index, line, col))
        previous = (line, col)
    return Source(value, file, tuple(segments))
