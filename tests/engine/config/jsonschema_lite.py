"""A small JSON Schema (2020-12) checker covering the keywords our generated schemas use, so tests
can show that editors accept the example files and reject typical mistakes (no jsonschema package)."""

from __future__ import annotations

import re
from typing import Any

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}
KNOWN = {
    "$schema", "$defs", "$ref", "title", "description", "default", "type", "properties", "required",
    "additionalProperties", "patternProperties", "items", "minItems", "maxItems", "anyOf", "enum",
    "const", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
}  # fmt: skip


def errors(
    schema: dict[str, Any], value: Any, root: dict[str, Any] | None = None, path: str = ""
) -> list[str]:
    root = root or schema
    unknown = set(schema) - KNOWN
    if unknown:
        return [f"{path}: unsupported keywords {sorted(unknown)}"]
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return errors(root["$defs"][name], value, root, path)
    out: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPES[k](value) for k in kinds):
            return [f"{path}: {value!r} is not {kinds}"]
    if "anyOf" in schema and all(errors(option, value, root, path) for option in schema["anyOf"]):
        out.append(f"{path}: {value!r} matches no alternative")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in enum")
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: {value!r} != {schema['const']!r}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0):
            out.append(f"{path}: too short")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: {value} < minimum")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: {value} > maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            out.append(f"{path}: {value} <= exclusiveMinimum")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            out.append(f"{path}: {value} >= exclusiveMaximum")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            out.append(f"{path}: wrong number of items")
        if "items" in schema:
            for index, item in enumerate(value):
                out.extend(errors(schema["items"], item, root, f"{path}[{index}]"))
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{path}: missing {name}")
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key in properties:
                out.extend(errors(properties[key], item, root, where))
                continue
            patterns = [s for p, s in schema.get("patternProperties", {}).items() if re.search(p, key)]
            if patterns:
                for sub in patterns:
                    out.extend(errors(sub, item, root, where))
            elif schema.get("additionalProperties") is False:
                out.append(f"{where}: unknown key")
            elif isinstance(schema.get("additionalProperties"), dict):
                out.extend(errors(schema["additionalProperties"], item, root, where))
    return out
