"""Safe, line-aware YAML reading: bytes -> a tree of positioned nodes, or diagnostics.

ruamel.yaml parses the text into events; the tree is built here rather than by ruamel's composer
so that every limit is enforced while building (nesting depth, alias expansion: a "billion laughs"
document is refused before anything walks it), duplicate keys are reported at the second key, and
every node keeps its exact position and scalar style (needed to place DSL errors inside a value).

Scalars follow the YAML 1.2 core schema: ``yes``/``on`` are text, ``012`` is 12, ``5m`` and ``10%``
are text. Merge keys (``<<: *defaults``) are supported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsl.errors import Diagnostic, Span
from engine.config._scalars import TAG_PREFIX, resolve_plain, short_tag, tagged

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "YamlDocument",
    "YamlNode",
    "parse_yaml",
    "read_yaml_file",
]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 50
MAX_NODES = 50_000


@dataclass(eq=False, slots=True)
class YamlNode:
    """One node of a YAML document with its position (1-based line/col, ``end_col`` exclusive).

    ``kind`` is ``"map"`` (``items``: key text -> (key node, value node), in file order), ``"seq"``
    (``children``) or ``"scalar"`` (``value``: str, int, float, bool or None; ``style`` is None for
    plain scalars, else one of ``' " | >``). ``start``/``end`` are character offsets in the text.
    """

    kind: str
    line: int
    col: int
    end_line: int
    end_col: int
    start: int
    end: int
    value: Any = None
    style: str | None = None
    items: dict[str, tuple[YamlNode, YamlNode]] = field(default_factory=dict)
    children: list[YamlNode] = field(default_factory=list)
    size: int = 1  # nodes after alias expansion, this one included
    height: int = 1

    def span(self, file: str) -> Span:
        if self.end_line == self.line and self.end_col > self.col:
            return Span(file, self.line, self.col, self.end_line, self.end_col)
        return Span.point(file, self.line, self.col)

    def to_python(self) -> Any:
        """Plain data (dicts, lists, scalars) for validation; aliases come out as shared objects."""
        memo: dict[int, Any] = {}

        def build(node: YamlNode) -> Any:
            if id(node) in memo:
                return memo[id(node)]
            if node.kind == "map":
                out: Any = {key: build(value) for key, (_, value) in node.items.items()}
            elif node.kind == "seq":
                out = [build(child) for child in node.children]
            else:
                out = node.value
            memo[id(node)] = out
            return out

        return build(self)

    def get(self, key: str) -> YamlNode | None:
        entry = self.items.get(key) if self.kind == "map" else None
        return entry[1] if entry else None

    def key_node(self, key: str) -> YamlNode | None:
        entry = self.items.get(key) if self.kind == "map" else None
        return entry[0] if entry else None


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed file: its display path, its text (for rendering carets) and its root node."""

    path: str
    text: str
    root: YamlNode | None
    diagnostics: tuple[Diagnostic, ...] = ()


class _Stop(Exception):
    """A fatal problem: building stops at the first one (later positions would be meaningless)."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def read_yaml_file(path: str | Path, display: str | None = None) -> YamlDocument:
    """Read and parse one file. Never raises for bad content; problems come back as diagnostics."""
    name = display if display is not None else str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return _failed(name, "", Diagnostic("CFG005", "file not found", Span.point(name, 1, 1)))
    except IsADirectoryError:
        return _failed(name, "", Diagnostic("CFG005", "is a directory, not a file", Span.point(name, 1, 1)))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return _failed(name, "", Diagnostic("CFG005", f"cannot read file: {reason}", Span.point(name, 1, 1)))
    return parse_yaml(data, name)


def _failed(name: str, text: str, diagnostic: Diagnostic) -> YamlDocument:
    return YamlDocument(name, text, None, (diagnostic,))


def _decode(data: bytes, name: str) -> str | Diagnostic:
    here = Span.point(name, 1, 1)
    if len(data) > MAX_BYTES:
        return Diagnostic(
            "YAML003", f"file is larger than {MAX_BYTES // 1024} KiB; refusing to read it", here
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Diagnostic("YAML002", "file is UTF-16 encoded; save it as UTF-8", here)
    nul = data.find(b"\x00")
    if nul >= 0:
        line, col = _byte_position(data, nul)
        return Diagnostic(
            "YAML002",
            f"binary file: NUL byte at line {line}, column {col}; expected UTF-8 text",
            here,
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _byte_position(data, exc.start)
        return Diagnostic(
            "YAML002",
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at line {line}, column {col}; save the file as UTF-8",
            here,
        )
    # Positions are counted on '\n' lines, like the renderer.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def parse_yaml(data: bytes | str, name: str = "<yaml>") -> YamlDocument:
    """Parse YAML bytes or text into a :class:`YamlDocument` (root None when it cannot be built)."""
    if isinstance(data, bytes):
        decoded = _decode(data, name)
        if isinstance(decoded, Diagnostic):
            return _failed(name, "", decoded)
        text = decoded
    else:
        text = data.replace("\r\n", "\n").replace("\r", "\n")
        if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
            return _failed(
                name, "", Diagnostic("YAML003", "text is larger than 1024 KiB", Span.point(name, 1, 1))
            )
    builder = _Builder(name, text)
    try:
        root = builder.build()
    except _Stop as stop:
        return YamlDocument(name, text, None, (*builder.diagnostics, stop.diagnostic))
    return YamlDocument(name, text, root, tuple(builder.diagnostics))


# ----- building the tree from parser events --------------------------------------------------------
@dataclass(slots=True)
class _Frame:
    node: YamlNode
    anchor: str | None
    key: YamlNode | None = None  # a map's pending key
    merges: list[YamlNode] = field(default_factory=list)


class _Builder:
    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        self.diagnostics: list[Diagnostic] = []
        self.anchors: dict[str, YamlNode] = {}
        self.open_anchors: set[str] = set()
        self.total = 0
        self.aliased = False

    def here(self, mark: Any, width: int = 1) -> Span:
        return Span.point(self.name, mark.line + 1, mark.column + 1, width)

    def stop(self, code: str, message: str, mark: Any, width: int = 1) -> _Stop:
        return _Stop(Diagnostic(code, message, self.here(mark, width)))

    def events(self) -> Iterator[Any]:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError, YAMLError
        from ruamel.yaml.reader import ReaderError

        try:
            yield from YAML(typ="safe", pure=True).parse(self.text)
        except MarkedYAMLError as exc:
            raise _Stop(self.syntax_error(exc)) from None
        except ReaderError as exc:
            line, col = self.position_of(exc.position)
            char = exc.character if isinstance(exc.character, str) else chr(exc.character)
            raise _Stop(
                Diagnostic(
                    "YAML002",
                    f"control character U+{ord(char):04X} is not allowed in YAML text",
                    Span.point(self.name, line, col),
                )
            ) from None
        except YAMLError as exc:  # pragma: no cover - every ruamel error seen so far carries a mark
            raise _Stop(
                Diagnostic("YAML001", str(exc).splitlines()[0], Span.point(self.name, 1, 1))
            ) from None

    def position_of(self, offset: int) -> tuple[int, int]:
        line_start = self.text.rfind("\n", 0, offset) + 1
        return self.text.count("\n", 0, offset) + 1, offset - line_start + 1

    def syntax_error(self, exc: Any) -> Diagnostic:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        span = self.here(mark) if mark is not None else Span.point(self.name, 1, 1)
        if "'\\t'" in problem:
            problem = "tab character: YAML indents with spaces only (replace the tab with spaces)"
        elif exc.context and exc.problem:
            context = exc.context.strip()
            problem = f"{problem} ({context}"
            if exc.context_mark is not None and exc.context_mark is not mark:
                problem += (
                    f" started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
                )
            problem += ")"
        return Diagnostic("YAML001", f"invalid YAML: {problem}", span)

    def node(self, kind: str, start: Any, end: Any, **extra: Any) -> YamlNode:
        return YamlNode(
            kind,
            start.line + 1,
            start.column + 1,
            end.line + 1,
            end.column + 1,
            start.index,
            end.index,
            **extra,
        )

    def count(self, amount: int, mark: Any) -> None:
        self.total += amount
        if self.total > MAX_NODES:
            if self.aliased:
                message = (
                    f"aliases expand to more than {MAX_NODES} nodes (an alias 'bomb'?); "
                    "use fewer or smaller anchors"
                )
            else:
                message = (
                    f"document has more than {MAX_NODES} nodes; configuration files are never this large"
                )
            raise self.stop("YAML003", message, mark)

    def build(self) -> YamlNode | None:
        stack: list[_Frame] = []
        root: YamlNode | None = None
        documents = 0
        for event in self.events():
            kind = type(event).__name__
            if kind == "DocumentStartEvent":
                documents += 1
                if documents > 1:
                    raise self.stop(
                        "YAML001",
                        "more than one YAML document ('---') in this file; put each bot or strategy in its own file",
                        event.start_mark,
                        3,
                    )
                continue
            if kind in ("StreamStartEvent", "StreamEndEvent", "DocumentEndEvent"):
                continue
            if kind in ("MappingEndEvent", "SequenceEndEvent"):
                frame = stack.pop()
                done = frame.node
                done.end_line, done.end_col, done.end = (
                    event.end_mark.line + 1,
                    event.end_mark.column + 1,
                    event.end_mark.index,
                )
                if frame.merges:
                    self.merge(done, frame.merges)
                if frame.anchor is not None:
                    self.open_anchors.discard(frame.anchor)
                value = done
            elif kind == "AliasEvent":
                target = self.anchors.get(event.anchor)
                if event.anchor in self.open_anchors:
                    raise self.stop(
                        "YAML001",
                        f"alias '*{event.anchor}' refers to a node that contains it",
                        event.start_mark,
                    )
                if target is None:
                    raise self.stop(
                        "YAML001",
                        f"unknown alias '*{event.anchor}' (define it first with '&{event.anchor}')",
                        event.start_mark,
                        len(event.anchor) + 1,
                    )
                self.aliased = True
                self.count(target.size, event.start_mark)
                value = target
            elif kind == "ScalarEvent":
                self.count(1, event.start_mark)
                value = self.scalar(event)
                if event.anchor is not None:
                    self.anchors[event.anchor] = value
            else:  # MappingStartEvent / SequenceStartEvent
                self.count(1, event.start_mark)
                if len(stack) + 1 > MAX_DEPTH:
                    raise self.stop(
                        "YAML003",
                        f"nested more than {MAX_DEPTH} levels deep; configuration files are never this deep",
                        event.start_mark,
                    )
                if event.tag is not None and event.tag not in (
                    "!",
                    TAG_PREFIX + "map",
                    TAG_PREFIX + "seq",
                ):
                    self.diagnostics.append(
                        Diagnostic(
                            "YAML001",
                            f"unsupported tag '{short_tag(event.tag)}'",
                            self.here(event.start_mark),
                        )
                    )
                node_kind = "map" if kind == "MappingStartEvent" else "seq"
                new = self.node(node_kind, event.start_mark, event.end_mark)
                if event.anchor is not None:
                    self.anchors[event.anchor] = new
                    self.open_anchors.add(event.anchor)
                stack.append(_Frame(new, event.anchor))
                continue
            if not stack:
                root = value
                continue
            self.attach(stack[-1], value)
        return root

    def scalar(self, event: Any) -> YamlNode:
        style = event.style if event.style in ("'", '"', "|", ">") else None
        node = self.node("scalar", event.start_mark, event.end_mark, style=style)
        text = event.value
        if event.tag is not None and event.tag != "!":
            try:
                node.value = tagged(event.tag, text)
            except ValueError as exc:
                self.diagnostics.append(Diagnostic("YAML001", str(exc), self.here(event.start_mark)))
                node.value = text
        elif style is None and event.tag is None:
            node.value = resolve_plain(text)
        else:
            node.value = text
        return node

    def attach(self, frame: _Frame, value: YamlNode) -> None:
        parent = frame.node
        parent.size += value.size
        parent.height = max(parent.height, value.height + 1)
        if parent.kind == "seq":
            parent.children.append(value)
            return
        if frame.key is None:
            frame.key = value
            return
        key_node, frame.key = frame.key, None
        if key_node.kind != "scalar":
            self.diagnostics.append(
                Diagnostic(
                    "YAML001",
                    "a key must be plain text, not a list or a mapping",
                    key_node.span(self.name),
                )
            )
            return
        key = self.key_text(key_node)
        if key == "<<" and key_node.style is None:
            frame.merges.extend(value.children if value.kind == "seq" else [value])
            return
        if key in parent.items:
            first = parent.items[key][0]
            self.diagnostics.append(
                Diagnostic(
                    "YAML004",
                    f"duplicate key '{key}' (first defined at line {first.line}, column {first.col})",
                    key_node.span(self.name),
                )
            )
            return
        parent.items[key] = (key_node, value)

    def key_text(self, node: YamlNode) -> str:
        if node.style is None and not isinstance(node.value, str):
            return self.text[node.start : node.end]  # plain `1.0:` stays "1.0", `~:` stays "~"
        return str(node.value)

    def merge(self, target: YamlNode, sources: list[YamlNode]) -> None:
        for source in sources:
            if source.kind != "map":
                self.diagnostics.append(
                    Diagnostic("YAML001", "'<<' merges mappings only", source.span(self.name))
                )
                continue
            for key, entry in source.items.items():
                target.items.setdefault(key, entry)
