"""The example ML strategy trades the same in a backtest and through `engine run --replay`: both read
the model's stored out-of-sample predictions through the same as-of join."""

from __future__ import annotations

import asyncio
import shutil

import pandas as pd
import pytest

from tests.engine.runtime.conftest import ROOT, make_workspace
from tests.engine.runtime.helpers import (
    closed_backtest_trades,
    database,
    db_trades,
    db_url,
    make_runtime,
)

pytestmark = pytest.mark.slow


def _train_and_store(root) -> str:
    from engine.config import load_model
    from engine.data import DataDirectory
    from engine.feeds.store import write_observations
    from engine.ml.pipeline import load_pairs
    from engine.ml.pit import prediction_observations
    from engine.ml.registry import register_version
    from engine.ml.train import train_and_save
    from engine.store import run_with_session

    loaded = load_model(root / "models" / "btc_direction.yaml")
    pairs = load_pairs(loaded, DataDirectory(root / "data"))
    outcome = train_and_save(loaded, pairs, root / "files", workers=1)

    async def store(session):
        await register_version(session, **outcome.registry_fields())
        rows = prediction_observations(
            outcome.predictions, outcome.name, outcome.spec_hash, "binance", outcome.version
        )
        return await write_observations(session, rows)

    assert asyncio.run(run_with_session(store, db_url(root))) > 0
    return outcome.version


async def test_ml_strategy_replay_equals_backtest(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "models", tmp_path / "models")  # first: the strategy reads ml.btc_direction
    model = tmp_path / "models" / "btc_direction.yaml"
    model.write_text(model.read_text().replace("trees: 200", "trees: 30"))  # the same model, quicker
    root = make_workspace(tmp_path, ["ml_hybrid.yaml"], days=7)
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(root))
    async with database(root):
        pass  # migrated
    await asyncio.to_thread(_train_and_store, root)
    expected = await asyncio.to_thread(closed_backtest_trades, root, "ml_hybrid.yaml")
    assert len(expected) >= 3, "the sample should trade"
    async with database(root) as factory:
        runtime = make_runtime(root, factory)
        await runtime.run()
        live = await db_trades(factory)
    got = [(p, pd.Timestamp(o), pd.Timestamp(c), r) for _, p, _, o, c, _, _, _, r in live]
    rows = [
        (r.pair, pd.Timestamp(r.open_time), pd.Timestamp(r.close_time), r.exit_reason)
        for r in expected.itertuples()
    ]
    assert got == rows
    # The strategy sizes its entries from the model's confidence: the amounts agree too ...
    amounts = [float(a) for *_, a, _ in live]
    assert amounts == pytest.approx(expected["amount"].tolist(), rel=1e-12)
    # ... and the size changed them: the same strategy without `size:` stakes differently.
    strategy = root / "strategies" / "ml_hybrid.yaml"
    strategy.write_text("\n".join(x for x in strategy.read_text().splitlines() if not x.startswith("size:")))
    unsized = await asyncio.to_thread(closed_backtest_trades, root, "ml_hybrid.yaml")
    assert unsized["amount"].tolist() != expected["amount"].tolist()


async def test_the_production_model_is_loaded_when_the_bots_start_not_at_the_first_close(
    tmp_path, monkeypatch
):
    import threading

    import engine.ml.live as live
    from engine.ml.registry import promote

    shutil.copytree(ROOT / "models", tmp_path / "models")
    model = tmp_path / "models" / "btc_direction.yaml"
    model.write_text(model.read_text().replace("trees: 200", "trees: 30"))
    root = make_workspace(tmp_path, ["ml_hybrid.yaml"], days=7)
    monkeypatch.setenv("ENGINE_DATABASE_URL", db_url(root))
    async with database(root):
        pass
    version = await asyncio.to_thread(_train_and_store, root)
    loads: list[tuple[str, bool]] = []  # (thread name, whether the event loop's thread loaded it)
    loop_thread = threading.get_ident()
    real_load = live.load_artifacts

    def counting_load(*args, **kwargs):
        loads.append((threading.current_thread().name, threading.get_ident() == loop_thread))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(live, "load_artifacts", counting_load)
    async with database(root) as factory:
        async with factory() as session, session.begin():
            await promote(session, "btc_direction", version, "test")
        runtime = make_runtime(root, factory)
        await runtime.start()
        at_start = list(loads)
        try:
            await runtime.pump()  # the first days have no stored prediction: the production model is asked
        finally:
            await runtime.stop()
        trades = await db_trades(factory)
    assert at_start == [(at_start[0][0], False)]  # loaded once, at start, off the event loop
    assert loads == at_start  # no candle close loaded it again
    assert trades, "the sample should trade"
