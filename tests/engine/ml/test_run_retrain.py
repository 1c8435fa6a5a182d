"""Continuous learning inside `engine run --replay`: a model with a `retrain:` block is retrained on its
schedule (candle time) by a child process while the candle loop goes on; a training that cannot run
keeps the production model and records why."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from engine.ml.registry import production
from engine.runtime.ml_retrain import due_slot
from engine.store.events import list_events
from tests.engine.ml.test_replay import _train_and_store
from tests.engine.runtime.conftest import ROOT, make_workspace
from tests.engine.runtime.helpers import database, db_url, make_runtime

DAY = 86_400 * 10**9


def test_due_at_each_new_multiple_of_every_never_at_the_first_candle():
    assert due_slot(5 * DAY + 10, DAY, None) is None
    assert due_slot(5 * DAY + 20, DAY, 5) is None
    assert due_slot(6 * DAY, DAY, 5) == 6
    assert due_slot(9 * DAY, DAY, 6) == 9  # days without candles: one retrain, not three


@pytest.mark.slow
async def test_replay_retrains_on_schedule_in_another_process(tmp_path, monkeypatch):
    from engine.ml.registry import promote

    shutil.copytree(ROOT / "models", tmp_path / "models")
    model = tmp_path / "models" / "btc_direction.yaml"
    text = model.read_text().replace("trees: 200", "trees: 30")
    model.write_text(text.replace("promote: manual", "promote: auto\n  margin: 0"))
    root = make_workspace(tmp_path, ["ml_hybrid.yaml"], days=7)
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(root))
    async with database(root):
        pass
    first = await asyncio.to_thread(_train_and_store, root)
    async with database(root) as factory:
        async with factory() as session, session.begin():
            await promote(session, "btc_direction", first, "test")
        runtime = make_runtime(root, factory)
        await runtime.run()
        retrainer = runtime.ml_retrain
        async with factory() as session:
            events = await list_events(session)
            current = await production(session, "btc_direction")
    assert retrainer is not None and [p.name for p in retrainer.plans] == ["btc_direction"]
    done = [e for e in events if e.kind == "ml/retrain"]
    failed = [e for e in events if e.kind == "ml/retrain_failed"]
    # Midnights 2..6 fall due; the first days have too little data for a 5-day window (kept, said why).
    assert done, [e.message for e in events if e.kind.startswith("ml/")]
    assert all(e.data["pid"] != os.getpid() for e in done)  # trained by a child process
    assert all("production model kept" in e.message for e in failed)
    assert retrainer.started == len(done) + len(failed) >= 2, [
        (e.kind, e.message[:90], e.data) for e in failed
    ]
    assert retrainer.candles_during_jobs > 0  # the candle loop went on while training ran
    # After each retrain that ran, the drift check ran too, in a child, as of the replayed time.
    assert retrainer.drift_checks == len(done), [e.message for e in events if e.kind.startswith("ml/")]
    promoted = [e for e in done if e.data["promoted"]]
    assert (current.version != first) == bool(promoted)


def test_the_drift_check_runs_as_of_the_engine_s_candle_time(tmp_path):
    from engine.runtime.ml_retrain import MLRetrainer, RetrainPlan

    plan = RetrainPlan("m", tmp_path / "m.yaml", DAY)
    retrainer = MLRetrainer(tmp_path, factory=None, plans=[plan])
    command = retrainer._command(plan, 5 * DAY, "drift")
    assert command[-4:] == ["drift", str(plan.path), "--to", "1970-01-06T00:00:00"]
    assert "--workers" not in command  # a retrain's option only


async def test_a_retrain_past_the_model_file_s_timeout_is_stopped_and_the_model_kept(tmp_path, monkeypatch):
    import sys
    import time

    from engine.runtime.ml_retrain import MLRetrainer, retrain_plans

    shutil.copytree(ROOT / "models", tmp_path / "models")
    model = tmp_path / "models" / "btc_direction.yaml"
    model.write_text(model.read_text().replace("  every: 1d\n", "  every: 1d\n  timeout: 1s\n"))
    (plan,) = retrain_plans(tmp_path)
    assert plan.timeout_s == 1.0
    async with database(tmp_path) as factory:
        retrainer = MLRetrainer(tmp_path, factory, plans=[plan])
        # A child that would train for a minute stands for a slow training.
        slow = [sys.executable, "-c", "import time; time.sleep(60)"]
        monkeypatch.setattr(retrainer, "_command", lambda *_args: slow)
        started = time.monotonic()
        await retrainer._run(plan, 5 * DAY)
        elapsed = time.monotonic() - started
        async with factory() as session:
            events = await list_events(session)
    assert elapsed < 20
    (failed,) = [e for e in events if e.kind == "ml/retrain_failed"]
    assert "still training after 1 s (retrain.timeout)" in failed.message
    assert "production model kept" in failed.message
    assert retrainer.drift_checks == 0


def test_the_retrain_timeout_defaults_to_30_minutes_and_rejects_a_bad_duration(tmp_path):
    from engine.config import load_model
    from engine.runtime.ml_retrain import retrain_plans

    shutil.copytree(ROOT / "models", tmp_path / "models")
    (plan,) = retrain_plans(tmp_path)
    assert plan.timeout_s == 1800.0
    model = tmp_path / "models" / "btc_direction.yaml"
    model.write_text(model.read_text().replace("  every: 1d\n", "  every: 1d\n  timeout: soon\n"))
    with pytest.raises(Exception, match=r"btc_direction.yaml:\d+:\d+.*timeout"):
        load_model(model)
