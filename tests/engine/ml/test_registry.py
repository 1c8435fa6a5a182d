"""The registry's promote/rollback, model files with checksums, and the corrupted-file cases."""

from __future__ import annotations

import json
import threading
import time

import pytest

from engine.ml.artifacts import load_artifacts
from engine.ml.errors import MLError
from engine.ml.live import ProductionModels
from engine.ml.pipeline import pair_data
from engine.ml.registry import list_versions, production, promote, register_version, rollback
from engine.ml.train import train_and_save
from engine.store import run_with_session
from tests.engine.ml.conftest import walk

PAIRS = ("AAA/BTC", "BBB/BTC")


@pytest.fixture
def trained(write_model, tmp_path):
    loaded = write_model(pairs=PAIRS, per_pair=True)
    pairs = [pair_data(loaded, p, walk(21 + i, 5)) for i, p in enumerate(PAIRS)]
    return loaded, pairs, train_and_save(loaded, pairs, tmp_path / "files", workers=1)


def test_model_files_are_text_with_checksums_and_load_back(trained):
    loaded, pairs, outcome = trained
    files = sorted(p.name for p in outcome.path.iterdir())
    assert files == ["meta.json", "model-AAA_BTC.txt", "model-BBB_BTC.txt"]
    assert (outcome.path / "model-AAA_BTC.txt").read_text().startswith("tree\nversion=")  # LightGBM's format
    meta = json.loads((outcome.path / "meta.json").read_text())
    assert meta["spec_hash"] == outcome.spec_hash and meta["seed"] == 7 and meta["version"] == outcome.version
    assert set(meta["importance"]) == set(loaded.feature_names)
    saved = load_artifacts(outcome.path, checksum=outcome.checksum, spec_hash=outcome.spec_hash)
    x = pairs[1].x[-5:]
    assert (saved.for_pair("BBB/BTC").predict_proba(x) == outcome.models["BBB_BTC"].predict_proba(x)).all()


def test_a_missing_corrupted_or_mismatched_model_file_is_a_clear_error(trained):
    _, _, outcome = trained
    with pytest.raises(MLError, match=r"ML007.*trained from another spec"):
        load_artifacts(outcome.path, checksum=outcome.checksum, spec_hash="0" * 64)
    model = outcome.path / "model-AAA_BTC.txt"
    model.write_text(model.read_text().replace("num_leaves=", "num_leaves=9", 1))
    with pytest.raises(MLError, match=r"ML006.*model-AAA_BTC.txt does not match its checksum"):
        load_artifacts(outcome.path)
    meta = outcome.path / "meta.json"
    meta.write_text(meta.read_text() + " ")
    with pytest.raises(MLError, match=r"ML006.*does not match the registry's checksum"):
        load_artifacts(outcome.path, checksum=outcome.checksum)
    model.unlink()
    with pytest.raises(MLError, match=r"ML006.*model-AAA_BTC.txt does not exist"):
        load_artifacts(outcome.path)


async def test_promote_and_rollback(tmp_path, trained):
    _, _, outcome = trained
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    fields = outcome.registry_fields()

    async def add_three(session):
        for version in ("v1", "v2", "v3"):
            await register_version(session, **{**fields, "version": version})

    await run_with_session(add_three, url)
    await run_with_session(lambda s: promote(s, fields["name"], "v1", "alice"), url)
    await run_with_session(lambda s: promote(s, fields["name"], "v2", "bob"), url)
    rows = await run_with_session(lambda s: list_versions(s, fields["name"]), url)
    assert [(r.version, r.status, r.promoted_by) for r in rows] == [
        ("v1", "retired", "alice"),
        ("v2", "production", "bob"),
        ("v3", "candidate", None),
    ]
    back = await run_with_session(lambda s: rollback(s, fields["name"], "carol"), url)
    assert back.version == "v1" and back.status == "production" and back.promoted_by == "carol"
    current = await run_with_session(lambda s: production(s, fields["name"]), url)
    assert current.version == "v1"
    with pytest.raises(MLError, match=r"ML008.*unknown version 'v9'.*versions: v1, v2, v3"):
        await run_with_session(lambda s: promote(s, fields["name"], "v9", "x"), url)
    with pytest.raises(MLError, match=r"ML008.*no production version"):
        await run_with_session(lambda s: rollback(s, "other", "x"), url)


class _Row:
    def __init__(self, outcome, version):
        self.version, self.path, self.checksum = version, str(outcome.path), outcome.checksum
        self.data_end = outcome.registry_fields()["data_end"]


def test_a_corrupted_production_model_keeps_the_last_good_one(trained, caplog):
    _, _, outcome = trained
    rows = {"m": _Row(outcome, "v1")}
    models = ProductionModels(refresh_s=0, lookup=lambda name, url: rows.get(name), background=False)
    assert models.get("m", outcome.spec_hash).version == "v1"
    # A newer version is promoted whose files were damaged: the engine keeps serving v1 and says why.
    (outcome.path / "model-AAA_BTC.txt").write_text("garbage")
    rows["m"] = _Row(outcome, "v2")
    assert models.get("m", outcome.spec_hash).version == "v1"
    assert "does not match its checksum" in models.errors["m"] and "keeping version v1" in models.errors["m"]
    assert "keeping version v1" in caplog.text


def test_later_registry_lookups_run_off_the_caller_while_the_current_model_serves(trained):
    _, _, outcome = trained
    rows = {"m": _Row(outcome, "v1")}
    release = threading.Event()
    calls: list[str] = []

    def lookup(name, url):
        calls.append(name)
        if len(calls) > 1:  # every lookup after the first is slow (a busy database)
            release.wait(5)
        return rows.get(name)

    models = ProductionModels(refresh_s=0, lookup=lookup)
    assert models.get("m", outcome.spec_hash).version == "v1"  # the first lookup: waited for
    rows["m"] = _Row(outcome, "v2")
    started = time.perf_counter()
    assert models.get("m", outcome.spec_hash).version == "v1"  # the slow lookup runs in a thread
    assert models.get("m", outcome.spec_hash).version == "v1"  # one at a time
    assert time.perf_counter() - started < 1.0 and len(calls) == 2
    release.set()
    models.wait()
    assert models.get("m", outcome.spec_hash).version == "v2"
