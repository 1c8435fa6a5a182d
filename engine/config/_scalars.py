"""Plain scalars -> values by the YAML 1.2 core schema, and the few explicit tags a config may use.

``yes``/``on`` stay text (YAML 1.1 would make them booleans), ``012`` is the number 12, and ``5m``,
``10%`` and ``1 BTC`` are text for the models to interpret.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["TAG_PREFIX", "resolve_plain", "short_tag", "tagged"]

TAG_PREFIX = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")


def resolve_plain(text: str) -> Any:
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.match(text):
        return math.nan
    return text


def short_tag(tag: str) -> str:
    return "!!" + tag[len(TAG_PREFIX) :] if tag.startswith(TAG_PREFIX) else tag


def tagged(tag: str, text: str) -> Any:
    """The value of an explicitly tagged scalar; raises ValueError with a message."""
    short = tag[len(TAG_PREFIX) :] if tag.startswith(TAG_PREFIX) else tag
    if short in ("str", "!"):
        return text
    resolved = resolve_plain(text)
    checks = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if short not in checks:
        shown = f"!!{short}" if tag.startswith(TAG_PREFIX) else tag
        raise ValueError(
            f"unsupported tag '{shown}' (only !!str, !!int, !!float, !!bool and !!null are allowed)"
        )
    if not checks[short](resolved):
        raise ValueError(f"'{text}' is not a valid !!{short}")
    return float(resolved) if short == "float" else resolved
