"""A model is identified by what it is, not by its name: a hash of its compiled features, label,
learner parameters, windows, seed and pairs, plus the range of data it saw. Changing any of them
makes a new version; nothing stale is ever reused under an old name."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from engine.config import LoadedModel

__all__ = ["FORMAT", "data_range", "model_version", "spec_hash"]

FORMAT = 1  # bump when the training code changes what a spec produces


def spec_hash(loaded: LoadedModel) -> str:
    """SHA-256 (hex) of everything in the model file that changes predictions."""
    spec = loaded.model.model_dump(mode="json", exclude={"description", "retrain"})
    # The compiled plan text of each feature: `rsi(close,14)` and `rsi(close, 14)` are one version,
    # while a change of any parameter or of a referenced input is another.
    spec["features"] = {
        name: loaded.plan.nodes[loaded.plan.outputs[name]].describe(list(loaded.plan.nodes))
        for name in loaded.feature_names
    }
    spec["plan"] = loaded.plan.describe()
    spec["format"] = FORMAT
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def data_range(pairs: Sequence[tuple[str, int, int]]) -> list[list[object]]:
    """[[pair, first open time ns, last open time ns], ...] sorted by pair: the data a version saw."""
    return [[p, int(a), int(b)] for p, a, b in sorted(pairs)]


def model_version(spec: str, ranges: Sequence[tuple[str, int, int]]) -> str:
    """The version id: 16 hex digits of the hash of the spec hash and the data range."""
    text = json.dumps({"spec": spec, "data": data_range(ranges)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
