"""Generated artefacts: the JSON Schema files in ``schema/`` (for editors) and the key tables of
docs/config.md. Both come from the models, and tests fail when the committed copies are stale."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from engine.config._bot import Bot
from engine.config._feeds import FeedsFile
from engine.config._model import Model
from engine.config._strategy import Strategy
from engine.config._types import TYPE_LABELS, format_ratio, schema_key
from engine.sentiment.config import SentimentConfig

__all__ = [
    "SCHEMA_FILES",
    "json_schemas",
    "reference_markdown",
    "update_reference",
    "write_schemas",
]

SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "strategy.schema.json": Strategy,
    "bot.schema.json": Bot,
    "model.schema.json": Model,
    "feeds.schema.json": FeedsFile,
    "sentiment.schema.json": SentimentConfig,
}
_DIALECT = "https://json-schema.org/draft/2020-12/schema"
BEGIN = "<!-- BEGIN GENERATED KEY REFERENCE: engine schema --docs docs/config.md -->"
END = "<!-- END GENERATED KEY REFERENCE -->"


# pydantic writes bounds on validator-wrapped types under their Python names (ge, gt, ...).
_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}
_BOUND_TEXT = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}


def _standard(node: Any) -> Any:
    """Standard JSON Schema keywords; and anyOf for pydantic's oneOf, because an input such as
    {default: 12} is valid for both the integer and the real-number input schema."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "discriminator":
                continue
            if isinstance(value, int | float) and key in _BOUNDS:
                key = _BOUNDS[key]
            elif key == "oneOf":
                key = "anyOf"
            out[key] = _standard(value)
        return out
    if isinstance(node, list):
        return [_standard(v) for v in node]
    return node


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return _standard(model.model_json_schema(mode="validation"))


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema (draft 2020-12) of each document kind."""
    return {name: {"$schema": _DIALECT, **model_schema(model)} for name, model in SCHEMA_FILES.items()}


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write the schema files into ``directory``; returns the paths written (only changed ones)."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, schema in json_schemas().items():
        path = directory / name
        text = _dump(schema)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def schema_text(name: str) -> str:
    return _dump(json_schemas()[name])


# ----- docs/config.md key tables --------------------------------------------------------------------
def _anchor(name: str) -> str:
    return name.lower()


def _type_text(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    bounds = [f"{_BOUND_TEXT[k]} {v}" for k, v in prop.items() if k in _BOUND_TEXT]
    plain = {k: v for k, v in prop.items() if k not in _BOUND_TEXT}
    label = TYPE_LABELS.get(schema_key(plain))
    if label:
        return f"{label} {', '.join(bounds)}" if bounds else label
    if "patternProperties" in prop:
        (value,) = prop["patternProperties"].values()
        return f"map of name → {_type_text(value, defs)}"
    options = prop.get("anyOf") or prop.get("oneOf")
    if options:
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) != len(options):
            single = rest[0] if len(rest) == 1 else {"anyOf": rest}
            return _type_text(single, defs)
        return " or ".join(_type_text(o, defs) for o in rest)
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = prop.get("type")
    if kind == "array":
        item = _type_text(prop.get("items", {}), defs)
        size = ""
        if prop.get("minItems") == prop.get("maxItems") and prop.get("minItems"):
            size = f" ({prop['minItems']} items)"
        return f"list of {item}{size}"
    if kind == "object":
        value = prop.get("additionalProperties")
        key = _type_text(prop.get("propertyNames", {}), defs) if prop.get("propertyNames") else "name"
        return f"map of {key} → {_type_text(value, defs)}" if isinstance(value, dict) else "mapping"
    if kind == "string":
        return "text"
    return str(kind) if kind else "any"


def _default_text(model: type[BaseModel], name: str, type_text: str) -> str:
    by_alias = {f.alias: f for f in model.model_fields.values() if f.alias}
    info = model.model_fields[name] if name in model.model_fields else by_alias[name]
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        return "see its table" if "](#" in type_text else "empty"
    value = info.default
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if type_text.startswith("percentage or fraction") and isinstance(value, float):
        return f"`{format_ratio(value)}`"
    return f"`{value}`"


def _models_in_order(root: type[BaseModel], schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The root and every nested model, depth-first in field order (each once)."""
    defs = schema.get("$defs", {})
    order: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()

    def visit(name: str, body: dict[str, Any]) -> None:
        if name in seen or name.endswith("Overlay"):
            return
        seen.add(name)
        order.append((name, body))
        for prop in body.get("properties", {}).values():
            for ref in re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(prop)):
                visit(ref, defs[ref])

    visit(root.__name__, schema)
    return order


def _model_class(name: str) -> type[BaseModel]:
    from engine.config import _bot, _feeds, _strategy
    from engine.sentiment import config as _sentiment

    for module in (_strategy, _bot, _feeds, _sentiment):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    raise KeyError(name)


def reference_markdown() -> str:
    """The key tables of both documents, as Markdown."""
    parts: list[str] = []
    for title, root in (
        ("Strategy files", Strategy),
        ("Bot files", Bot),
        ("Feeds file (feeds.yaml)", FeedsFile),
        ("News file (sentiment.yaml)", SentimentConfig),
    ):
        schema = model_schema(root)
        defs = schema.get("$defs", {})
        parts.append(f"### {title}\n")
        for name, body in _models_in_order(root, schema):
            model = _model_class(name)
            doc = " ".join((model.__doc__ or "").split())
            parts.append(f"#### {name}\n\n{doc}\n")
            parts.append("| key | type | default | meaning |\n| --- | --- | --- | --- |")
            for key, prop in body.get("properties", {}).items():
                type_text = _type_text(prop, defs)
                if key == "profiles":
                    type_text = "map of name → overlay (any keys above except `bot`)"
                default = _default_text(model, key, type_text)
                meaning = (prop.get("description") or "").replace("|", "\\|")
                parts.append(f"| `{key}` | {type_text} | {default} | {meaning} |")
            parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def update_reference(text: str) -> str:
    """``text`` (docs/config.md) with the generated section between the markers replaced."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {BEGIN!r} and {END!r} are missing")
    return text[: start + len(BEGIN)] + "\n\n" + reference_markdown() + "\n" + text[end:]
