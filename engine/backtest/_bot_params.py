"""`engine optimize --write`: new params into a bot file, keeping everything else as it was written."""

from __future__ import annotations

import copy
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dsl.errors import Diagnostic, DiagnosticError
from engine.config import load_bot

__all__ = ["write_bot_params"]


def _move_tail(source: Any, source_key: Any, target: Any, target_key: Any) -> None:
    """Move the comment lines and blank lines that follow ``source_key``'s line (ruamel keeps them on
    that key) to after ``target_key``, so that new keys go above them rather than below."""
    entry = source.ca.items.get(source_key)
    if not entry or len(entry) < 3 or entry[2] is None:
        return
    token = entry[2]
    head, newline, tail = token.value.partition("\n")
    if not tail:
        return
    moved = copy.copy(token)
    moved.value = "\n" + tail
    if head.strip():
        token.value = head + newline  # the comment at the end of the line itself stays
    else:
        entry[2] = None
    target.ca.items[target_key] = [None, None, moved, None]


def write_bot_params(bot_path: str | os.PathLike[str], params: Mapping[str, int | float | bool]) -> None:
    """Set ``params`` in the bot file's ``params:`` mapping, keeping its comments, key order and quoting
    (ruamel round trip). The new file is validated before it replaces the old one."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    path = Path(bot_path)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    document = yaml.load(path.read_text(encoding="utf-8"))
    if not isinstance(document, CommentedMap):
        raise DiagnosticError([Diagnostic("OPT004", f"{path}: not a bot file (a mapping at the top level)")])
    section = document.get("params")
    if isinstance(section, CommentedMap) and len(section):
        holder, holder_key = section, list(section)[-1]
    elif "params" in document:  # `params:` with nothing (or no mapping) under it
        holder, holder_key = document, "params"
        section = document["params"] = CommentedMap()
    else:
        keys = list(document)
        position = keys.index("strategy") + 1 if "strategy" in keys else len(keys)
        holder, holder_key = document, keys[position - 1]
        section = CommentedMap()
        document.insert(position, "params", section)
    for name, value in params.items():
        section[name] = value
    if len(section):
        _move_tail(holder, holder_key, section, list(section)[-1])
    out = io.StringIO()
    yaml.dump(document, out)
    temporary = path.with_name(f".{path.name}.optimize.tmp")
    temporary.write_text(out.getvalue(), encoding="utf-8")
    try:
        load_bot(temporary)  # never leave a bot file that no longer loads
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
