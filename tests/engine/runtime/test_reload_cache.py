"""BotFileCache: a reload validates only what changed and gives exactly what a full load gives."""

from __future__ import annotations

import shutil

from engine.runtime import config_hash, load_bots
from engine.runtime.loader import BotFileCache
from tests.engine.runtime.conftest import ROOT


def _bots(tmp_path, copies: int = 3):
    (tmp_path / "bots").mkdir()
    shutil.copytree(ROOT / "strategies", tmp_path / "strategies")
    template = (ROOT / "bots" / "eth_btc_trend.yaml").read_text()
    for k in range(copies):
        text = template.replace("bot: eth-btc-trend", f"bot: copy-{k}")
        (tmp_path / "bots" / f"copy_{k}.yaml").write_text(text)
    return tmp_path / "bots", tmp_path / "strategies" / "ema_rsi.yaml"


def _same_as_a_full_load(cached, bots_dir) -> None:
    full = load_bots(bots_dir)
    assert set(cached.bots) == set(full.bots) and cached.errors == full.errors
    for name, bot in full.bots.items():
        mine = cached.bots[name]
        assert config_hash(mine) == config_hash(bot)
        assert dict(mine.strategy.inputs) == dict(bot.strategy.inputs)
        assert repr(mine.strategy.plan) == repr(bot.strategy.plan)
        assert mine.model == bot.model


def test_unchanged_files_are_reused_and_a_strategy_edit_compiles_once(tmp_path):
    bots_dir, strategy = _bots(tmp_path)
    cache = BotFileCache()
    first = cache.load(bots_dir)
    again = cache.load(bots_dir)
    assert all(again.bots[n] is first.bots[n] for n in first.bots)  # nothing validated again

    strategy.write_text(strategy.read_text().replace("rsi_max: {default: 70", "rsi_max: {default: 71"))
    edited = cache.load(bots_dir)
    _same_as_a_full_load(edited, bots_dir)
    assert len({id(b.strategy) for b in edited.bots.values()}) == 1  # one compilation, shared

    bot_file = bots_dir / "copy_1.yaml"
    bot_file.write_text(bot_file.read_text().replace("max_per_trade: 10%", "max_per_trade: 11%"))
    one = cache.load(bots_dir)
    _same_as_a_full_load(one, bots_dir)
    assert one.bots["copy-0"] is edited.bots["copy-0"] and one.bots["copy-1"] is not edited.bots["copy-1"]


def test_a_strategy_edit_that_breaks_a_bots_params_reports_at_the_bot(tmp_path):
    bots_dir, strategy = _bots(tmp_path, copies=1)
    cache = BotFileCache()
    cache.load(bots_dir)
    strategy.write_text(
        strategy.read_text().replace(
            "fast: {default: 12, range: [5, 30]", "fast: {default: 12, range: [10, 30]"
        )
    )
    broken = cache.load(bots_dir)
    _same_as_a_full_load(broken, bots_dir)
    (message,) = broken.errors.values()
    assert "copy_0.yaml:" in message and "params.fast" in message
