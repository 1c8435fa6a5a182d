"""Where a strategy keeps its DSL text: every rule slot of a strategy document, with what it must
evaluate to, so the API and the editor page list the same rules in the same order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.editor.validate import Expect, RuleContext

__all__ = ["SIDES", "RuleSlot", "rule_slots"]

SIDES = ("long", "short")
Key = str | int


@dataclass(frozen=True)
class RuleSlot:
    """One rule: ``keys`` is its place in the file (``("entry", "long")``, ``("confirm", "long", 0)``),
    ``text`` its DSL ("" for an empty entry/exit side), ``expect`` what it evaluates to."""

    keys: tuple[Key, ...]
    text: str
    expect: Expect

    @property
    def key(self) -> str:
        return ".".join(str(k) for k in self.keys)

    def context(self, base: RuleContext) -> RuleContext:
        """A feature cannot refer to itself: its own name is left out of what it may use."""
        if self.keys[0] == "features":
            return base.without_feature(str(self.keys[1]))
        return base


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


def rule_slots(data: Mapping[str, Any], *, empty_sides: bool = True) -> list[RuleSlot]:
    """The rules of a strategy document (plain data): features, entry and exit sides (both sides
    listed, empty when absent, if ``empty_sides``), confirm filters and score signals."""
    slots: list[RuleSlot] = []
    features = data.get("features")
    for name, body in features.items() if isinstance(features, Mapping) else ():
        text = _text(body)
        if text is not None:
            slots.append(RuleSlot(("features", str(name)), text, "any"))
    for section in ("entry", "exit"):
        sides = data.get(section)
        sides = sides if isinstance(sides, Mapping) else {}
        for side in SIDES:
            text = _text(sides.get(side))
            if text is not None or empty_sides:
                slots.append(RuleSlot((section, side), text or "", "condition"))
    confirm = data.get("confirm")
    for side in SIDES:
        items = confirm.get(side) if isinstance(confirm, Mapping) else None
        for index, item in enumerate(items if isinstance(items, list) else ()):
            text = _text(item)
            if text is not None:
                slots.append(RuleSlot(("confirm", side, index), text, "condition"))
    score = data.get("score")
    for side in SIDES:
        block = score.get(side) if isinstance(score, Mapping) else None
        signals = block.get("signals") if isinstance(block, Mapping) else None
        for index, signal in enumerate(signals if isinstance(signals, list) else ()):
            text = _text(signal.get("when")) if isinstance(signal, Mapping) else None
            if text is not None:
                slots.append(RuleSlot(("score", side, "signals", index, "when"), text, "condition"))
    return slots
