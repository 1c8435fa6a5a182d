"""The second phase for bots: meaning across keys (pairs vs market and capital, credentials per mode,
parameters vs the strategy's inputs), each error at the node it is about; and profile overlays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dsl import Diagnostic
from dsl.errors import did_you_mean
from engine.config._bot import Bot
from engine.config._strategy_check import InputInfo, InputValue
from engine.config._types import format_ratio, split_money
from engine.config._yaml import YamlNode

__all__ = ["apply_overlay", "check_bot_meaning", "check_params"]


def _at(root: YamlNode, *path: str) -> YamlNode | None:
    node: YamlNode | None = root
    for part in path:
        node = node.get(part) if node is not None else None
    return node


def _key(root: YamlNode, *path: str) -> YamlNode | None:
    parent = _at(root, *path[:-1])
    return parent.key_node(path[-1]) if parent is not None else None


def _quote(pair: str) -> str:
    return pair.split("/", 1)[1].split(":", 1)[0]


def _check_pairs(bot: Bot, root: YamlNode, file: str, out: list[Diagnostic]) -> None:
    pairs = _at(root, "pairs")
    if pairs is None or pairs.kind != "seq":
        return
    futures = bot.exchange.market == "futures"
    currency = bot.capital.currency
    currency_from = "the capital"
    seen: set[str] = set()
    for pair, node in zip(bot.pairs, pairs.children, strict=False):
        span = node.span(file)
        if pair in seen:
            out.append(Diagnostic("CFG006", f"pair {pair} is listed twice", span))
            continue
        seen.add(pair)
        if futures and ":" not in pair:
            quote = _quote(pair)
            out.append(
                Diagnostic(
                    "CFG006",
                    f"futures pairs name their settlement currency: write {pair}:{quote} (market is futures)",
                    span,
                )
            )
            continue
        if not futures and ":" in pair:
            out.append(
                Diagnostic(
                    "CFG006",
                    f"spot pairs have no ':SETTLE' part: write {pair.split(':')[0]} (or set exchange.market: futures)",
                    span,
                )
            )
            continue
        quote = _quote(pair)
        if currency is None:
            currency, currency_from = quote, f"the first pair ({pair})"
        elif quote != currency:
            out.append(
                Diagnostic(
                    "CFG006",
                    f"{pair} is quoted in {quote}, but {currency_from} is in {currency}; a bot's pairs share one quote currency",
                    span,
                )
            )


def check_bot_meaning(bot: Bot, root: YamlNode, file: str) -> list[Diagnostic]:
    """Cross-key checks on a structurally valid bot (one variant: the base or a profile applied)."""
    out: list[Diagnostic] = []
    initial = _at(root, "capital", "initial")
    currency = _at(root, "capital", "currency")
    split = split_money(initial.value) if initial is not None else None
    if split is not None and currency is not None and currency.value != split[1]:
        out.append(
            Diagnostic(
                "CFG002",
                f"capital.currency is {currency.value} but capital.initial is in {split[1]}",
                currency.span(file),
            )
        )
    _check_pairs(bot, root, file, out)
    exchange = bot.exchange
    if exchange.mode in ("testnet", "live") and exchange.credentials is None:
        mode = _at(root, "exchange", "mode")
        anchor = mode if mode is not None else _key(root, "exchange")
        assert anchor is not None
        out.append(
            Diagnostic(
                "CFG003",
                f"mode {exchange.mode} needs exchange.credentials: {{key: env:..., secret: env:...}}",
                anchor.span(file),
            )
        )
    if exchange.market == "spot":
        for name in ("leverage", "margin_mode"):
            key = _key(root, "exchange", name)
            if key is not None and getattr(exchange, name) is not None:
                out.append(
                    Diagnostic(
                        "CFG002", f"exchange.{name} applies to futures only (market is spot)", key.span(file)
                    )
                )
    lock = bot.risk.profit_lock
    keep = _at(root, "risk", "profit_lock", "keep")
    if lock is not None and keep is not None and lock.keep >= lock.activate_at:
        out.append(
            Diagnostic(
                "CFG002",
                f"risk.profit_lock.keep ({format_ratio(lock.keep)}) must be below activate_at ({format_ratio(lock.activate_at)})",
                keep.span(file),
            )
        )
    _check_notifications(bot, root, file, out)
    return out


def _check_notifications(bot: Bot, root: YamlNode, file: str, out: list[Diagnostic]) -> None:
    """A notifications block that can never send anything is a mistake worth stopping for."""
    notes = bot.notifications
    node = _key(root, "notifications")
    if notes is None or node is None:
        return
    if notes.telegram is None and not notes.webhooks and notes.email is None:
        out.append(
            Diagnostic(
                "CFG002", "notifications: no channel; add telegram, webhooks or email", node.span(file)
            )
        )
    nodes = {"telegram": _at(root, "notifications", "telegram"), "email": _at(root, "notifications", "email")}
    hooks = _at(root, "notifications", "webhooks")
    for i, child in enumerate(hooks.children if hooks is not None and hooks.kind == "seq" else []):
        nodes[f"webhooks[{i}]"] = child
    channels = [("telegram", notes.telegram), ("email", notes.email)]
    channels += [(f"webhooks[{i}]", w) for i, w in enumerate(notes.webhooks)]
    for where, channel in channels:
        if channel is None or channel.events:
            continue
        parent = nodes.get(where)
        at = (parent.get("events") if parent is not None and parent.kind == "map" else None) or parent or node
        out.append(
            Diagnostic(
                "CFG002",
                f"notifications.{where}.events is empty: the channel would never send",
                at.span(file),
            )
        )


def check_params(
    root: YamlNode, file: str, inputs: Mapping[str, InputInfo], strategy_file: str
) -> tuple[dict[str, InputValue], list[Diagnostic]]:
    """The valid overrides in ``params`` and an error for each unknown or out-of-range one."""
    params = _at(root, "params")
    values: dict[str, InputValue] = {}
    out: list[Diagnostic] = []
    if params is None or params.kind != "map":
        return values, out
    for name, (key, node) in params.items.items():
        info = inputs.get(name)
        if info is None:
            hint = did_you_mean(name, inputs)
            known = f" (inputs: {', '.join(inputs)})" if inputs and not hint else ""
            out.append(
                Diagnostic(
                    "CFG008",
                    f"unknown parameter '{name}': the strategy {strategy_file} has no such input{hint}{known}",
                    key.span(file),
                )
            )
            continue
        value: Any = node.value
        problem = info.check(value)
        if problem is not None:
            out.append(Diagnostic("CFG008", f"params.{name}: {problem}", node.span(file)))
            continue
        values[name] = int(value) if info.kind == "int" else value
    return values, out


def apply_overlay(base: YamlNode, overlay: YamlNode) -> YamlNode:
    """Deep merge: mappings merge key by key; anything else in the overlay replaces the base value.
    Nodes keep their own positions, so errors point at the file text they came from."""
    if base.kind != "map" or overlay.kind != "map":
        return overlay
    merged = YamlNode(
        "map", base.line, base.col, base.end_line, base.end_col, base.start, base.end, items=dict(base.items)
    )
    for key, (key_node, value) in overlay.items.items():
        if key in merged.items:
            merged.items[key] = (key_node, apply_overlay(merged.items[key][1], value))
        else:
            merged.items[key] = (key_node, value)
    return merged
