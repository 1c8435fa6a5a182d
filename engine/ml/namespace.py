"""``ml.<model>.<member>`` in rules: p_buy, p_sell, p_hold, signal (+1 buy, -1 sell, 0 hold) and
confidence (the highest of the three probabilities) of a model declared in the project's ``models/``.

Backtests read the walk-forward, out-of-sample predictions stored by ``engine ml train`` (point-in-time
series known at each candle's close). Candles after the production model's training data, which no
stored prediction covers, are predicted by that model from the candles themselves: the same function
serves a backtest, a replay and live trading, and never uses a model on the data it was trained on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsl import FeedSpec, Registry
from dsl.errors import did_you_mean
from dsl.timeframes import timeframe_seconds
from dsl.types import NUMBER, Type
from engine.config._project import Project
from engine.config._yaml import read_yaml_file

__all__ = ["MEMBERS", "discover_models", "register"]

log = logging.getLogger(__name__)

MEMBERS = ("p_buy", "p_sell", "p_hold", "signal", "confidence")
_NS = 1_000_000_000


def discover_models(root: Path) -> dict[str, Path]:
    """Model name -> file, for every ``models/*.yaml`` whose top level has a ``model:`` name."""
    found: dict[str, Path] = {}
    folder = root / "models"
    if not folder.is_dir():
        return found
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        document = read_yaml_file(path)
        root_node = document.root
        name = root_node.get("model") if root_node is not None and root_node.kind == "map" else None
        if name is not None and isinstance(name.value, str) and name.value not in found:
            found[name.value] = path
    return found


class _Models:
    """The project's model files, compiled on first use against the built-in functions."""

    def __init__(self, files: dict[str, Path]):
        self.files = files
        self._loaded: dict[str, Any] = {}
        self._hash: dict[str, str] = {}
        self.production: Any = None  # ProductionModels, created on first live use
        self.lock = threading.Lock()
        self.cache: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self.live: dict[tuple[str, str, str], Any] = {}  # (model, exchange, pair) -> LiveRows

    def loaded(self, name: str) -> Any:
        if name not in self._loaded:
            from engine.config import load_model
            from engine.indicators import default_registry

            try:
                self._loaded[name] = load_model(self.files[name], registry=default_registry())
            except Exception as exc:  # reported by `engine validate` on the model file itself
                log.warning("model %s cannot be loaded: %s", name, exc)
                self._loaded[name] = None
        return self._loaded[name]

    def spec_hash(self, name: str) -> str:
        if name not in self._hash:
            from engine.ml.identity import spec_hash

            self._hash[name] = spec_hash(self._loaded[name])
        return self._hash[name]


def _probabilities(models: _Models, name: str, ctx: Any) -> np.ndarray:
    """(rows, 3) probabilities sell/hold/buy for the candles of ``ctx``; NaN where nothing is known."""
    from engine.feeds.join import asof, decision_times
    from engine.ml.pit import STORED_MEMBERS, model_series

    candles: pd.DataFrame = ctx.candles
    user = ctx.user
    out = np.full((len(candles), 3), np.nan)
    loaded = models.loaded(name)
    if user is None or getattr(user, "reader", None) is None or loaded is None or len(candles) == 0:
        return out
    index = candles.index
    opens = index.as_unit("ns").asi8 if isinstance(index, pd.DatetimeIndex) else np.asarray(index, np.int64)
    key = (name, user.exchange, user.pair, int(opens[0]), int(opens[-1]), len(opens))
    if key in models.cache:
        return models.cache[key]
    spec = models.spec_hash(name)
    model_tf = timeframe_seconds(loaded.model.timeframe) * _NS
    times = decision_times(opens, timeframe_seconds(ctx.timeframe) * _NS)
    for j, member in enumerate(STORED_MEMBERS):
        series = user.reader.series(model_series(name, spec, member, user.exchange, user.pair))
        # A prediction describes its own candle: valid until the model's next candle closes, never
        # carried over to the next one (that candle gets its own prediction, or none).
        out[:, j] = asof(times, series, model_tf - 1)
    if ctx.timeframe == loaded.model.timeframe:
        _fill_from_production(models, name, spec, loaded, candles, opens, out, user, model_tf)
    models.cache[key] = out
    while len(models.cache) > 64:
        models.cache.popitem(last=False)
    return out


def _production(models: _Models, name: str, spec: str) -> Any:
    """The production model of ``name`` (engine/ml/live.py): its first lookup reads the registry and
    loads the model files; later ones are cached and refreshed in a thread."""
    with models.lock:  # a bot starting (worker thread) and one deciding (event loop) share this
        if models.production is None:
            from engine.ml.live import ProductionModels

            models.production = ProductionModels()
    return models.production.get(name, spec)


def _fill_from_production(
    models: _Models,
    name: str,
    spec: str,
    loaded: Any,
    candles: pd.DataFrame,
    opens: np.ndarray,
    out: np.ndarray,
    user: Any,
    timeframe_ns: int,
) -> None:
    missing = np.isnan(out[:, 2])
    if not missing.any():
        return
    production = _production(models, name, spec)
    if production is None:
        return
    fitted = production.saved.for_pair(user.pair)
    rows = np.flatnonzero(missing & (opens > production.data_end))
    if fitted is None or len(rows) == 0:
        return
    from engine.ml.live_rows import LiveRows

    # Rows predicted at an earlier close are reused; new ones get streamed features (engine/ml/live_rows.py).
    key = (name, user.exchange, user.pair)
    live = models.live.get(key)
    if live is None or live.version != production.version:
        live = models.live[key] = LiveRows(production.version)
    out[rows] = live.predict(loaded, fitted, candles, opens, rows, user)
    # A live prediction (the newest candle, closed moments ago) is stored to be scored against its label
    # once it realises (engine/ml/tracking.py); a backtest's history never is.
    close = int(opens[-1]) + timeframe_ns
    now = time.time_ns()
    if rows[-1] == len(opens) - 1 and 0 <= now - close <= 2 * timeframe_ns:
        from engine.ml.live_log import live_observations

        models.production.predictions.record(
            live_observations(
                name, spec, production.version, user.exchange, user.pair, close, out[-1].tolist(), now
            )
        )


def _member(proba: np.ndarray, member: str) -> np.ndarray:
    if member in ("p_sell", "p_hold", "p_buy"):
        return proba[:, ("p_sell", "p_hold", "p_buy").index(member)].copy()
    known = ~np.isnan(proba).any(axis=1)
    out = np.full(len(proba), np.nan)
    if member == "confidence":
        out[known] = proba[known].max(axis=1)
    else:  # signal: -1 sell, 0 hold, +1 buy
        out[known] = proba[known].argmax(axis=1) - 1.0
    return out


def register(registry: Registry, project: Project) -> None:
    files = discover_models(project.root)
    models = _Models(files)

    def resolve(path: tuple[str, ...]) -> Type:
        names = sorted(files)
        if path[0] not in files:
            known = f" (models: {', '.join(names)})" if names else " (no models/*.yaml in this project)"
            raise KeyError(f"unknown model '{path[0]}'{did_you_mean(path[0], names)}{known}")
        if len(path) != 2 or path[1] not in MEMBERS:
            member = path[1] if len(path) > 1 else ""
            raise KeyError(
                f"write ml.{path[0]}.<member>; members: {', '.join(MEMBERS)}{did_you_mean(member, MEMBERS)}"
            )
        return NUMBER

    def impl(path: tuple[str, ...], ctx: Any) -> np.ndarray:
        return _member(_probabilities(models, path[0], ctx), path[1])

    def prepare(paths: tuple[tuple[str, ...], ...]) -> None:
        # A running engine starting a bot: the production model of each model it reads is looked up and
        # loaded now (registry read, LightGBM import, model files), not at the first candle close.
        for name in dict.fromkeys(path[0] for path in paths):
            if name in files and models.loaded(name) is not None:
                _production(models, name, models.spec_hash(name))

    def warmup() -> int:
        plans = [models.loaded(n) for n in files]
        return max([p.plan.warmup for p in plans if p is not None], default=0)

    if "ml" in registry.feeds:
        return
    registry.add_feed(
        FeedSpec(
            name="ml",
            resolve=resolve,
            impl=impl,
            members=lambda: [f"{n}.{m}" for n in sorted(files) for m in MEMBERS],
            warmup=warmup() if files else 0,
            doc=(
                "Predictions of the project's models (models/*.yaml): p_buy, p_sell, p_hold, signal "
                "(+1 buy, -1 sell, 0 hold) and confidence. Backtests read the walk-forward out-of-sample "
                "predictions stored by `engine ml train`; newer candles use the production model."
            ),
            example="ml.btc_direction.p_buy > 0.45",
            prepare=prepare,
        )
    )
