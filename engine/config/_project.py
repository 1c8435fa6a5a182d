"""A project: the folder holding ``feeds.yaml`` and ``models/`` beside ``bots/`` and ``strategies/``, and
the rule-language registry it compiles against (built-in functions plus every namespace of external
series: feeds, model predictions, sentiment).

Namespaces come from provider modules listed in ``PROVIDER_MODULES`` (by name, imported when a registry
is built), each with ``register(registry, project)``; configuration never imports them at module level.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path

from dsl import Registry

__all__ = ["PROVIDER_MODULES", "Project", "find_project_root", "project_registry"]

# One line per provider of rule namespaces; add yours here.
PROVIDER_MODULES: tuple[str, ...] = (
    "engine.feeds.namespace",
    "engine.sentiment.namespace",
    "engine.ml.namespace",
)

_MARKERS = ("feeds.yaml", "models", "bots", "strategies")


@dataclass(frozen=True)
class Project:
    root: Path

    @functools.cached_property
    def feeds(self):
        from engine.config._feeds import load_feeds

        return load_feeds(self.root)


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``feeds.yaml`` or ``models/``; else the nearest
    holding ``bots/`` or ``strategies/`` (a strategy in ``strategies/`` belongs to its parent); else
    ``start``."""
    start = start.resolve()
    if start.is_file():
        start = start.parent
    chain = [start, *list(start.parents)[:4]]
    for folder in chain:
        if (folder / "feeds.yaml").is_file() or (folder / "models").is_dir():
            return folder
    for folder in chain:
        if (folder / "bots").is_dir() or (folder / "strategies").is_dir():
            return folder
    return start


def _signature(root: Path) -> tuple[float, ...]:
    """Changes whenever a file a provider reads changes, so a hot reload sees new feeds and models."""
    stamps: list[float] = []
    for path in (root / "feeds.yaml", root / "sentiment.yaml", root / "models"):
        try:
            stamps.append(path.stat().st_mtime)
        except OSError:
            stamps.append(0.0)
    models = root / "models"
    if models.is_dir():
        stamps.extend(p.stat().st_mtime for p in sorted(models.glob("*.y*ml")))
    return tuple(stamps)


def project_registry(root: Path) -> Registry:
    """The built-in functions plus the project's namespaces (feeds, models, sentiment)."""
    root = root.resolve()
    return _registry(root, _signature(root))


@functools.lru_cache(maxsize=16)
def _registry(root: Path, _signature: tuple[float, ...]) -> Registry:
    from engine.indicators import build_registry

    registry = build_registry()
    project = Project(root)
    for name in PROVIDER_MODULES:
        importlib.import_module(name).register(registry, project)
    return registry
