"""ruamel round-trip details for :mod:`engine.editor.yaml_edit`: values written in the style of the
ones they replace, and comments and blank lines kept when entries are removed."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["delete_entry", "plain", "styled"]

Key = str | int


def delete_entry(node: Any, key: Key) -> None:
    """Remove ``key``; the blank lines and comments that followed the last entry move to the new last
    entry (ruamel keeps them on the entry they follow, so they would vanish with it)."""
    from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    if key not in keys:
        return
    ending = _end_token(node, key) if key == keys[-1] and len(keys) > 1 else None
    # A block scalar's own last newline ends its line, so the whole token is what follows it.
    block_scalar = ending is not None and isinstance(
        ending[0][ending[1]], LiteralScalarString | FoldedScalarString
    )
    del node[key]
    if ending is None or ending[2] is None:
        return
    token = ending[2]
    tail = token.value if block_scalar else token.value.partition("\n")[2]
    if not tail:
        return
    last = list(node)[-1] if isinstance(node, dict) else len(node) - 1
    target = _end_token(node, last)
    if target is None:
        return
    container, slot_key, existing = target
    if existing is not None:
        existing.value = existing.value + tail if existing.value.endswith("\n") else existing.value
        return
    moved = copy.copy(token)
    moved.value = "\n" + tail
    slot = 2 if isinstance(container, dict) else 0
    entry = container.ca.items.setdefault(slot_key, [None, None, None, None])
    entry[slot] = moved


def _end_token(node: Any, key: Key) -> tuple[Any, Key, Any] | None:
    """(container, key, comment token or None) of the line that ends entry ``key`` of ``node``."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    while True:
        child = node[key]
        if isinstance(child, CommentedMap | CommentedSeq) and len(child) and not child.fa.flow_style():
            node, key = child, (list(child)[-1] if isinstance(child, dict) else len(child) - 1)
            continue
        if not isinstance(node, CommentedMap | CommentedSeq):
            return None
        slot = 2 if isinstance(node, dict) else 0
        entry = node.ca.items.get(key)
        return node, key, (entry[slot] if entry and len(entry) > slot else None)


def plain(value: Any) -> Any:
    """ruamel's containers and scalar types as plain dicts, lists, str, int, float, bool."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def styled(value: Any, old: Any, parent: Any) -> Any:
    """``value`` as ruamel should write it, in the style of the value it replaces or of its siblings."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import LiteralScalarString, ScalarString

    if isinstance(value, str) and isinstance(old, ScalarString) and not isinstance(value, ScalarString):
        if isinstance(old, LiteralScalarString) and old.endswith("\n") and not value.endswith("\n"):
            value += "\n"  # keep `|` rather than turning it into `|-`
        return type(old)(value)
    if isinstance(value, dict) and not isinstance(value, CommentedMap):
        mapping = CommentedMap()
        for key, item in value.items():
            mapping[key] = styled(item, old.get(key) if isinstance(old, dict) else None, mapping)
        flow = old.fa.flow_style() if isinstance(old, CommentedMap) else _sibling_flow(parent)
        if flow:
            mapping.fa.set_flow_style()
        return mapping
    if isinstance(value, list) and not isinstance(value, CommentedSeq):
        seq = CommentedSeq(styled(item, None, None) for item in value)
        if isinstance(old, CommentedSeq) and old.fa.flow_style():
            seq.fa.set_flow_style()
        return seq
    return value


def _sibling_flow(parent: Any) -> bool:
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(parent, dict):
        return False
    siblings = [v for v in parent.values() if isinstance(v, CommentedMap)]
    return bool(siblings) and all(s.fa.flow_style() for s in siblings)
