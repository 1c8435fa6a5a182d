"""Model files: LightGBM's own text format (or the logistic JSON) plus ``meta.json``, never pickle.

Layout: ``<root>/<name>/<version>/meta.json`` and one ``model-<key>.txt`` per fitted model (``all``
for a model across pairs, else the pair key such as ``ETH_BTC``). ``meta.json`` records the SHA-256 of
every model file; the registry records the SHA-256 of ``meta.json``. Loading checks both, so a missing,
truncated or swapped file is a clear error and the caller keeps its last good model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.ml.errors import MLError
from engine.ml.learners import Fitted

__all__ = ["SavedModel", "default_models_root", "load_artifacts", "pair_key", "save_artifacts", "sha256_file"]

ALL = "all"


def default_models_root() -> Path:
    return Path(os.environ.get("ENGINE_HOME") or "var") / "models"


def pair_key(pair: str) -> str:
    return pair.replace("/", "_").replace(":", "_")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class SavedModel:
    """A model version read back from disk and verified."""

    path: Path
    meta: dict[str, Any]
    models: dict[str, Fitted]  # "all" or a pair key -> fitted model

    def for_pair(self, pair: str) -> Fitted | None:
        return self.models.get(ALL) or self.models.get(pair_key(pair))


def _write(path: Path, text: str) -> None:
    # Write then rename: a crash leaves the old file or the new one, never half of one.
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def save_artifacts(
    root: Path, name: str, version: str, models: dict[str, Fitted], meta: dict[str, Any]
) -> tuple[Path, str]:
    """Write the version's files; returns its directory and the SHA-256 of its meta.json."""
    directory = root / name / version
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    for key, fitted in models.items():
        file = directory / f"model-{key}.txt"
        _write(file, fitted.body)
        files[key] = {
            "file": file.name,
            "sha256": sha256_file(file),
            "kind": fitted.kind,
            "classes": list(fitted.classes),
            "columns": list(fitted.columns),
        }
    document = {**meta, "name": name, "version": version, "files": files}
    meta_path = directory / "meta.json"
    _write(meta_path, json.dumps(document, indent=2, sort_keys=True, allow_nan=False))
    return directory, sha256_file(meta_path)


def load_artifacts(
    directory: Path, *, checksum: str | None = None, spec_hash: str | None = None
) -> SavedModel:
    """Read and verify a version's files (``checksum``: of meta.json, from the registry; ``spec_hash``:
    the model file's current hash, to refuse a model trained from another spec)."""
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        raise MLError("ML006", f"model files missing: {meta_path} does not exist")
    if checksum is not None and sha256_file(meta_path) != checksum:
        raise MLError(
            "ML006", f"model file corrupted or replaced: {meta_path} does not match the registry's checksum"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        files = meta["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MLError(
            "ML006", f"model file corrupted: {meta_path} is not a model's metadata ({exc})"
        ) from None
    if spec_hash is not None and meta.get("spec_hash") != spec_hash:
        raise MLError(
            "ML007",
            f"model {meta.get('name')} version {meta.get('version')} was trained from another spec than the "
            "current model file (its features, label, learner or windows changed): train it again",
        )
    models: dict[str, Fitted] = {}
    for key, entry in files.items():
        path = directory / entry["file"]
        if not path.is_file():
            raise MLError("ML006", f"model files missing: {path} does not exist")
        if sha256_file(path) != entry["sha256"]:
            raise MLError(
                "ML006", f"model file corrupted or replaced: {path} does not match its checksum in meta.json"
            )
        fitted = Fitted(
            entry["kind"], tuple(entry["classes"]), tuple(entry["columns"]), path.read_text(encoding="utf-8")
        )
        try:  # parse now (it would happen on first use): a bad file fails here, at load
            fitted._booster() if fitted.kind == "lightgbm" else fitted._params()
        except Exception as exc:  # LightGBM raises its own LightGBMError on a bad text
            raise MLError(
                "ML006", f"model file corrupted: {path} cannot be read ({str(exc).splitlines()[0]})"
            ) from None
        models[key] = fitted
    return SavedModel(directory, meta, models)
