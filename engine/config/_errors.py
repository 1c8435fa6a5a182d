"""Pydantic validation errors -> Diagnostics at the YAML node they are about.

A pydantic ``loc`` is a path of keys and list indexes, sometimes with union tags in between; it is
walked down the positioned YAML tree (tags are skipped). Unknown keys point at the key, missing keys
at the mapping's own key, bad values at the value.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

from dsl.errors import Diagnostic, Span, did_you_mean
from engine.config._types import describe
from engine.config._yaml import YamlNode

__all__ = ["format_path", "locate", "validation_diagnostics"]

_CODE = re.compile(r"^(CFG|YAML)\d{3}$")


def format_path(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locate(root: YamlNode, loc: Sequence[Any]) -> tuple[list[str | int], YamlNode, YamlNode | None, bool]:
    """Follow ``loc`` down the tree as far as it goes.

    Returns the path actually followed, the node reached, that node's key node (None for list items
    and the root) and whether every element of ``loc`` that names a key or index was found.
    """
    node, key_node = root, None
    path: list[str | int] = []
    complete = True
    for index, element in enumerate(loc):
        if node.kind == "map" and isinstance(element, str) and element in node.items:
            key_node, node = node.items[element]
            path.append(element)
        elif node.kind == "seq" and isinstance(element, int) and 0 <= element < len(node.children):
            node, key_node = node.children[element], None
            path.append(element)
        elif index == len(loc) - 1 or node.kind == "scalar":
            complete = False
            break
        # otherwise: a union tag inserted by pydantic; skip it
    return path, node, key_node, complete


def _model_fields(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """Field names of the model found at ``loc`` (for "did you mean" on unknown keys)."""
    candidates: list[Any] = [model]
    for element in loc:
        following: list[Any] = []
        for candidate in candidates:
            for item in _expand(candidate):
                if isinstance(item, type) and issubclass(item, BaseModel):
                    if element in item.model_fields:
                        following.append(item.model_fields[element].rebuild_annotation())
                    elif isinstance(element, str):
                        following.append(item)  # a union tag: stay on this model
                elif typing.get_origin(item) is dict:
                    following.append(typing.get_args(item)[1])
                elif typing.get_origin(item) is list and isinstance(element, int):
                    following.append(typing.get_args(item)[0])
        candidates = following
    names: list[str] = []
    for candidate in candidates:
        for item in _expand(candidate):
            if isinstance(item, type) and issubclass(item, BaseModel):
                names.extend(n for n in item.model_fields if n not in names)
    return names


def _expand(annotation: Any) -> list[Any]:
    """The alternatives inside Annotated / Optional / Union wrappers."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _expand(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_expand(arg))
        return out
    return [annotation]


def _choices(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def _message(error: dict[str, Any], where: str) -> tuple[str, str]:
    """(code, message) for one pydantic error about the value at ``where``."""
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    prefix = f"{where}: " if where else ""
    if _CODE.match(kind):
        return kind, prefix + error["msg"]
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "CFG002", f"{prefix}expected a mapping (key: value lines), got {describe(value)}"
    if kind in ("list_type", "tuple_type"):
        return "CFG002", f"{prefix}expected a list, got {describe(value)}"
    if kind in ("string_type", "string_sub_type"):
        return "CFG002", f"{prefix}expected text, got {describe(value)}"
    if kind == "literal_error":
        choices = _choices(str(ctx.get("expected", "")))
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        return "CFG002", f"{prefix}expected one of {', '.join(choices)}; got {describe(value)}{hint}"
    if kind in ("too_short", "too_long"):
        size = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        exact = ctx.get("min_length") == ctx.get("max_length")
        how = (
            "exactly" if kind == "too_short" and exact else ("at least" if kind == "too_short" else "at most")
        )
        return "CFG002", f"{prefix}needs {how} {size} item(s), got {ctx.get('actual_length')}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return "CFG002", f"{prefix}must be {bounds[kind]} {limit}, got {describe(value)}"
    text = error["msg"]
    return "CFG002", prefix + text[:1].lower() + text[1:]


def validation_diagnostics(
    error: ValidationError, root: YamlNode, file: str, model: type[BaseModel], base: Sequence[str | int] = ()
) -> list[Diagnostic]:
    """Every error of ``error`` (raised validating ``root``'s data with ``model``) as a Diagnostic.

    ``base`` is the path of ``root`` inside the document, used only in messages.
    """
    out: list[Diagnostic] = []
    seen: set[tuple[int, int, str]] = set()
    for item in error.errors(include_url=False):
        loc = item["loc"]
        path, node, key_node, complete = locate(root, loc)
        full = [*base, *path]
        kind = item["type"]
        if kind == "extra_forbidden" and complete and key_node is not None:
            parent = full[:-1]
            name = str(full[-1])
            hint = did_you_mean(name, _model_fields(model, loc[:-1]))
            where = f" in '{format_path(parent)}'" if parent else ""
            diagnostic = Diagnostic("CFG001", f"unknown key '{name}'{where}{hint}", key_node.span(file))
        elif kind == "missing" and not complete:
            name = str(loc[-1])
            where = f" in '{format_path(full)}'" if full else ""
            anchor = key_node if key_node is not None else node
            span = anchor.span(file) if key_node is not None else Span.point(file, node.line, node.col)
            diagnostic = Diagnostic("CFG003", f"missing required key '{name}'{where}", span)
        else:
            code, message = _message(item, format_path(full))
            diagnostic = Diagnostic(code, message, node.span(file))
        # Several union members may reject the same value: report the first reason only.
        identity = (node.line, node.col, diagnostic.code if kind != "missing" else diagnostic.message)
        if identity in seen:
            continue
        seen.add(identity)
        out.append(diagnostic)
    return out
