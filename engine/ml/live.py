"""The production model of each model name, for live rules: looked up in the registry, loaded from
its files (checksums verified, spec hash checked against the current model file), and kept.

A failed load (files missing, corrupted, trained from another spec) keeps the last good model and
logs why; lookups are repeated at most every ``refresh_s`` seconds, so a promotion or a rollback is
picked up by a running engine without a restart. Only a model's first lookup waits for the registry;
later ones run in a thread while the current model keeps serving (a registry read costs 5-7 ms on
SQLite, and lookups happen inside a candle's decision, on the engine's event loop).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.ml.artifacts import SavedModel, load_artifacts
from engine.ml.errors import MLError

__all__ = ["Production", "ProductionModels"]

log = logging.getLogger(__name__)


@dataclass
class Production:
    version: str
    data_end: int  # open time (ns) of the last candle it was trained on: later candles are out of sample
    saved: SavedModel


def _registry_row(name: str, url: str | None) -> Any:
    """The production row of ``name`` (or None), read on a private loop in a worker thread so this
    works from synchronous code and from inside the engine's running event loop alike."""
    from engine.ml.registry import production
    from engine.store.db import read_blocking

    return read_blocking(lambda session: production(session, name), url)


class ProductionModels:
    """name -> the production model, cached; ``lookup`` is replaceable in tests."""

    def __init__(
        self,
        url: str | None = None,
        refresh_s: float = 60.0,
        lookup: Callable[[str, str | None], Any] = _registry_row,
        background: bool = True,
    ):
        self.url = url
        self.refresh_s = refresh_s
        self.background = background
        self._lookup = lookup
        self._pending: set[str] = set()  # names whose lookup runs in a thread now
        self._models: dict[str, Production] = {}
        self._checked: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self._log: Any = None  # PredictionLog, created on the first live prediction

    @property
    def predictions(self) -> Any:
        """The write-behind log of live predictions (engine/ml/live_log.py), to the same store."""
        if self._log is None:
            from engine.ml.live_log import PredictionLog

            self._log = PredictionLog(self.url)
        return self._log

    def get(self, name: str, spec_hash: str) -> Production | None:
        now = time.monotonic()
        if now - self._checked.get(name, -1e18) >= self.refresh_s:
            first = name not in self._checked
            self._checked[name] = now
            if first or not self.background:
                self._refresh(name, spec_hash)
            elif name not in self._pending:
                self._pending.add(name)
                threading.Thread(
                    target=self._refresh_then_clear, args=(name, spec_hash), name=f"model-{name}", daemon=True
                ).start()
        return self._models.get(name)

    def _refresh_then_clear(self, name: str, spec_hash: str) -> None:
        try:
            self._refresh(name, spec_hash)
        finally:
            self._pending.discard(name)

    def wait(self, timeout: float = 10.0) -> None:
        """Until no lookup runs in a thread (tests, and a clean stop)."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.005)

    def _refresh(self, name: str, spec_hash: str) -> None:
        try:
            row = self._lookup(name, self.url)
        except Exception as exc:  # the store is down: keep serving what we have
            self._note(name, f"cannot read the model registry: {exc}")
            return
        if row is None:
            self._models.pop(name, None)
            return
        current = self._models.get(name)
        if current is not None and current.version == row.version:
            return
        try:
            saved = load_artifacts(Path(row.path), checksum=row.checksum, spec_hash=spec_hash)
        except MLError as exc:
            kept = f"; keeping version {current.version}" if current else ""
            self._note(name, f"{exc.message}{kept}")
            return
        self._models[name] = Production(row.version, int(row.data_end), saved)
        self.errors.pop(name, None)

    def _note(self, name: str, message: str) -> None:
        if self.errors.get(name) != message:
            log.warning("model %s: %s", name, message)
        self.errors[name] = message
