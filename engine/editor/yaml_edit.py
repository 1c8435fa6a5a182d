"""Edit a strategy (or bot) file in place: ruamel round trip, so comments, key order, flow style and
quoting stay as written; the new text is validated in memory before an atomic replace, and a file
that would not validate is never written (its diagnostics come back instead)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dsl import Diagnostic, DiagnosticError, Registry, Span
from engine.editor._ruamel import delete_entry, plain, styled
from engine.editor.files import replace_file

__all__ = ["DELETE", "EditableFile", "validate_text"]

Key = str | int


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Any = _Delete()  # pass as a value to remove a key

# ruamel needs the sequence indentation up front; these are the two layouts in use.
_INDENTS = ((2, 4, 2), (2, 2, 0))


def _yaml(indent: tuple[int, int, int]) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long rules
    mapping, sequence, offset = indent
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _dump(yaml: Any, document: Any) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


class EditableFile:
    """One open strategy or bot file. Change it with :meth:`set` (or the named helpers), look at the
    result with :meth:`text` / :meth:`validate`, write it with :meth:`save`."""

    def __init__(self, path: Path, text: str, document: Any, yaml: Any, display: str, relative_to: Path):
        self.path = path
        self.display = display
        self.original = text
        self._document = document
        self._yaml = yaml
        self._relative_to = relative_to

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, relative_to: Path | None = None) -> EditableFile:
        """Read ``path``; raises DiagnosticError when it is not a YAML mapping."""

        from engine.config import display_path

        path = Path(path)
        relative_to = relative_to or Path.cwd()
        display = display_path(path, relative_to)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise DiagnosticError(
                [Diagnostic("EDT001", f"cannot read file: {reason}", Span.point(display, 1, 1))]
            ) from None
        return cls.from_text(path, text, relative_to=relative_to)

    @classmethod
    def from_text(
        cls, path: str | os.PathLike[str], text: str, *, relative_to: Path | None = None
    ) -> EditableFile:
        """``text`` as the content of ``path`` (which need not exist); :meth:`save` writes it only if
        the file on disk still holds ``text``. Raises DiagnosticError when it is not a YAML mapping."""
        from ruamel.yaml.comments import CommentedMap
        from ruamel.yaml.error import YAMLError

        from engine.config import display_path

        path = Path(path)
        relative_to = relative_to or Path.cwd()
        display = display_path(path, relative_to)
        chosen = None
        for indent in _INDENTS:
            yaml = _yaml(indent)
            try:
                document = yaml.load(text)
            except YAMLError:
                from engine.config import parse_yaml

                problems = parse_yaml(text, display).diagnostics
                raise DiagnosticError(
                    problems or [Diagnostic("YAML001", "invalid YAML", Span.point(display, 1, 1))]
                ) from None
            if not isinstance(document, CommentedMap):
                raise DiagnosticError(
                    [
                        Diagnostic(
                            "EDT002", "expected key: value lines at the top level", Span.point(display, 1, 1)
                        )
                    ]
                )
            if chosen is None:
                chosen = (document, yaml)
            if _dump(yaml, document) == text:  # the layout this file is written in
                chosen = (document, yaml)
                break
        assert chosen is not None
        return cls(path, text, chosen[0], chosen[1], display, relative_to)

    # ----- reading ------------------------------------------------------------------------------------
    @property
    def kind(self) -> str | None:
        if "strategy" in self._document:
            return "strategy"
        return "bot" if "bot" in self._document else None

    def get(self, keys: Sequence[Key], default: Any = None) -> Any:
        """The value at ``keys`` (e.g. ``("entry", "long")``, ``("confirm", "long", 0)``) as plain data."""
        node = self._document
        for key in keys:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return default
        return plain(node)

    def text(self) -> str:
        """The file as it would be written now."""
        return _dump(self._yaml, self._document)

    @property
    def changed(self) -> bool:
        return self.text() != self.original

    # ----- changing -----------------------------------------------------------------------------------
    def set(self, keys: Sequence[Key], value: Any) -> None:
        """Set the value at ``keys``, creating mappings on the way; :data:`DELETE` removes the key.

        A string replacing a string keeps the old one's style (plain, quoted, ``|`` or ``>``); a new
        mapping among flow-style siblings (``fast: {default: 12}``) is written in flow style too.
        """
        from ruamel.yaml.comments import CommentedSeq

        if not keys:
            raise ValueError("an empty key path")
        node = self._document
        for depth, key in enumerate(keys[:-1]):
            if isinstance(node, dict):
                child = node.get(key)
                if child is None:
                    child = node[key] = styled({}, None, node)
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                child = node[key]
            else:
                raise ValueError(f"cannot set {_where(keys)}: {_where(keys[: depth + 1])} does not exist")
            if not isinstance(child, dict | list):
                raise ValueError(f"cannot set {_where(keys)}: {_where(keys[: depth + 1])} is a single value")
            node = child
        last = keys[-1]
        if isinstance(node, list) and not (isinstance(last, int) and 0 <= last <= len(node)):
            raise ValueError(f"cannot set {_where(keys)}: the list has {len(node)} items")
        if value is DELETE:
            delete_entry(node, last)
            return
        old = node.get(last) if isinstance(node, dict) else (node[last] if last < len(node) else None)
        new = styled(value, old, node)
        if isinstance(node, CommentedSeq) and last == len(node):
            node.append(new)
        else:
            node[last] = new

    def set_rule(self, section: str, side: str, text: str | None) -> None:
        """``entry``/``exit`` rule of ``side`` (None removes it)."""
        self.set((section, side), DELETE if text is None else text)

    def set_confirm(self, side: str, texts: Iterable[str]) -> None:
        self._set_list(("confirm", side), list(texts))

    def set_score(self, side: str, threshold: float, signals: Iterable[dict[str, Any]]) -> None:
        """Score of ``side``: ``signals`` are ``{"when": text, "weight": w, "description": ...}``."""
        self.set(("score", side, "threshold"), threshold)
        self._set_list(("score", side, "signals"), list(signals))

    def set_feature(self, name: str, text: str | None) -> None:
        self.set(("features", name), DELETE if text is None else text)

    def set_stop(self, name: str, value: str | float | None) -> None:
        """``stop_loss`` / ``take_profit``: ``"3%"``, ``0.03`` or an expression (a price distance)."""
        self.set(("stops", name), DELETE if value is None else value)

    def set_trailing(self, activate_at: str | float | None, distance: str | float | None) -> None:
        if distance is None:
            self.set(("stops", "trailing"), DELETE)
            return
        if activate_at is not None:
            self.set(("stops", "trailing", "activate_at"), activate_at)
        self.set(("stops", "trailing", "distance"), distance)

    def set_input(self, name: str, **fields: Any) -> None:
        """Change an input's ``default``, ``range``, ``step`` or ``description`` (None removes a field)."""
        for field_name, value in fields.items():
            self.set(("inputs", name, field_name), DELETE if value is None else value)

    def set_sizing(self, **fields: Any) -> None:
        """A bot's position sizing: ``risk_per_trade``, ``max_exposure``, ``max_open_trades`` (under
        ``risk``) and ``max_per_trade``, ``initial``, ``reinvest`` (under ``capital``)."""
        capital = {"initial", "currency", "max_per_trade", "reinvest"}
        for field_name, value in fields.items():
            section = "capital" if field_name in capital else "risk"
            self.set((section, field_name), DELETE if value is None else value)

    def _set_list(self, keys: Sequence[Key], values: list[Any]) -> None:
        """Replace a list item by item, so that comments on unchanged items stay where they were."""
        current = self.get(keys)
        if not values:
            self.set(keys, DELETE)
            return
        if not isinstance(current, list):
            self.set(keys, values)
            return
        for index, value in enumerate(values):
            if index >= len(current) or plain(value) != current[index]:
                self.set((*keys, index), value)
        for index in range(len(current) - 1, len(values) - 1, -1):
            self.set((*keys, index), DELETE)

    # ----- checking and writing -----------------------------------------------------------------------
    def validate(
        self, *, registry: Registry | None = None, dependents: Sequence[str | os.PathLike[str]] = ()
    ) -> list[Diagnostic]:
        """Every problem the edited text would have, as ``engine validate`` reports it for the file
        (positions in the new text). ``dependents`` are bot files checked against the edited strategy."""
        return validate_text(
            self.path,
            self.text(),
            registry=registry,
            dependents=dependents,
            relative_to=self._relative_to,
            display=self.display,
        )

    def save(
        self, *, registry: Registry | None = None, dependents: Sequence[str | os.PathLike[str]] = ()
    ) -> list[Diagnostic]:
        """Write the file if the edited text validates; returns [] when written, else the diagnostics
        (and the file on disk is untouched). Refuses too when the file changed on disk since it was opened."""
        try:
            on_disk = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            return [
                Diagnostic(
                    "EDT001", f"cannot read file: {exc.strerror or exc}", Span.point(self.display, 1, 1)
                )
            ]
        if on_disk != self.original:
            message = "the file changed on disk since it was opened; reopen it and apply the edit again"
            return [Diagnostic("EDT003", message, Span.point(self.display, 1, 1))]
        problems = self.validate(registry=registry, dependents=dependents)
        if problems:
            return problems
        text = self.text()
        # Temp file beside the target, then rename: a reader (hot reload) sees the old or the new file.
        replace_file(self.path, text)
        self.original = text
        return []


def validate_text(
    path: str | os.PathLike[str],
    text: str,
    *,
    kind: str | None = None,
    registry: Registry | None = None,
    dependents: Sequence[str | os.PathLike[str]] = (),
    relative_to: Path | None = None,
    display: str | None = None,
) -> list[Diagnostic]:
    """Every error ``text`` would have as the content of ``path`` (which need not exist yet), as
    ``engine validate`` reports it, positions in ``text``. ``kind`` ("strategy" or "bot") refuses a
    file of the other kind; ``dependents`` are bot files checked against ``text`` as their strategy."""
    from engine.config import detect_kind, display_path, parse_yaml
    from engine.config._session import Session  # the config's one checker, fed the unsaved text

    path = Path(path)
    relative_to = relative_to or Path.cwd()
    display = display or display_path(path, relative_to)
    session = Session(registry, relative_to)
    document = parse_yaml(text, display)
    session.documents[path.resolve()] = document
    found_kind, problems = detect_kind(document)
    found = [*document.diagnostics, *problems]
    if kind is not None and found_kind is not None and found_kind != kind:
        other = "strategy" if kind == "bot" else "bot"
        message = f"expected a {kind} file (a top-level '{kind}:' key), got a {other} file"
        found.append(Diagnostic("EDT005", message, Span.point(display, 1, 1)))
    elif found_kind == "strategy":
        found.extend(session.strategy(path).diagnostics)
    elif found_kind == "bot":
        found = [*document.diagnostics, *session.check_bot(path)]
    for bot in dependents:
        found.extend(session.check_bot(Path(bot)))
    unique: list[Diagnostic] = []
    for diagnostic in found:
        if diagnostic not in unique:
            unique.append(diagnostic)
    return [d for d in unique if d.severity == "error"]


def _where(keys: Sequence[Key]) -> str:
    return ".".join(str(k) for k in keys)
