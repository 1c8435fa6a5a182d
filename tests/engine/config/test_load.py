"""The public API: load_strategy, load_bot (profiles, params), validate_files, resolve_secret."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dsl import DiagnosticError, resample_candles
from engine.config import load_bot, load_strategy, resolve_secret, validate_files, validate_report
from tests.engine.config.conftest import ROOT

STRATEGY = """\
strategy: s
timeframe: 5m
inputs:
  fast: {default: 12, range: [5, 30]}
  slow: {default: 26, range: [20, 100]}
features:
  fast_ma: ema(close, fast)
entry:
  long: crosses_above(fast_ma, ema(close, slow))
exit:
  long: crosses_below(fast_ma, ema(close, slow))
confirm:
  long: ["close@1h > ema(close@1h, 20)"]
score:
  long: {threshold: 1, signals: [{when: "rsi(close, 14) < 60", weight: 1}, {when: volume > 0, weight: 0.5}]}
stops:
  stop_loss: 2 * atr(14)
  take_profit: 5%
"""

BOT = """\
bot: b
strategy: s.yaml
params: {fast: 9}
exchange: {name: binance}
pairs: [ETH/BTC]
capital: {initial: 1 BTC}
profiles:
  live:
    exchange: {mode: live, credentials: {key: env:K, secret: env:S}}
    capital: {max_per_trade: 5%}
    params: {slow: 40}
"""


def codes(error: DiagnosticError) -> list[str]:
    return [d.code for d in error.diagnostics]


def test_load_strategy_with_params(write, registry):
    path = write("s.yaml", STRATEGY)
    loaded = load_strategy(path, {"fast": 9}, registry=registry, relative_to=path.parent)
    assert loaded.file == "s.yaml" and loaded.timeframe == "5m"
    assert dict(loaded.inputs) == {"fast": 9, "slow": 26}
    assert loaded.plan.timeframes == frozenset({"5m", "1h"})
    assert loaded.entry_column("long") == "entry_long" and loaded.entry_column("short") is None
    assert loaded.exit_column("long") == "exit_long"
    assert loaded.confirm_columns("long") == ("confirm_long_1",)
    assert loaded.score_columns("long") == (("score_long_1", 1.0), ("score_long_2", 0.5))
    assert loaded.stop_column("stop_loss") == "stop_loss" and loaded.stop_column("take_profit") is None
    assert loaded.model.stops.take_profit == pytest.approx(0.05)
    assert loaded.warmup > 0


def test_params_change_the_compiled_plan(write, registry):
    path = write("s.yaml", STRATEGY)
    default = load_strategy(path, registry=registry)
    longer = load_strategy(path, {"slow": 100}, registry=registry)
    assert "length=100" in longer.plan.describe() and "length=100" not in default.plan.describe()


def test_load_strategy_rejects_bad_params(write, registry):
    path = write("s.yaml", STRATEGY)
    with pytest.raises(DiagnosticError) as info:
        load_strategy(path, {"fast": 50, "slwo": 3}, registry=registry)
    messages = [d.message for d in info.value.diagnostics]
    assert codes(info.value) == ["CFG008", "CFG008"]
    assert "outside the range [5, 30]" in messages[0] and "did you mean 'slow'" in messages[1]


def test_every_layer_reports_in_one_error(write, registry):
    path = write(
        "bad.yaml",
        "strategy: s\ntimeframe: 5m\ndescripton: typo\ninputs:\n  n: {default: 99, range: [1, 10]}\n"
        "entry:\n  long: close > ema(close, n) and rsii(close) > 1\n",
    )
    with pytest.raises(DiagnosticError) as info:
        load_strategy(path, registry=registry, relative_to=path.parent)
    assert sorted(codes(info.value)) == ["CFG001", "CFG008", "DSL002"]


def test_kind_mismatch(write, registry):
    strategy = write("s.yaml", STRATEGY)
    bot = write("b.yaml", BOT)
    with pytest.raises(DiagnosticError, match="bot file, not a strategy"):
        load_strategy(bot, registry=registry)
    with pytest.raises(DiagnosticError, match="strategy file, not a bot"):
        load_bot(strategy, registry=registry)


def test_load_bot_base_and_profile(write, registry):
    write("s.yaml", STRATEGY)
    path = write("b.yaml", BOT)
    base = load_bot(path, registry=registry)
    assert base.profile is None and base.model.exchange.mode == "paper"
    assert base.model.capital.currency == "BTC" and base.model.capital.max_per_trade == 1.0
    assert dict(base.strategy.inputs) == {"fast": 9, "slow": 26}
    live = load_bot(path, "live", registry=registry)
    assert live.model.exchange.mode == "live" and live.model.exchange.name == "binance"
    assert live.model.capital.max_per_trade == pytest.approx(0.05) and live.model.capital.initial == 1.0
    assert live.model.params == {"fast": 9, "slow": 40}  # mappings merge key by key
    assert dict(live.strategy.inputs) == {"fast": 9, "slow": 40}


def test_unknown_profile(write, registry):
    write("s.yaml", STRATEGY)
    path = write("b.yaml", BOT)
    with pytest.raises(DiagnosticError) as info:
        load_bot(path, "lvie", registry=registry)
    assert codes(info.value) == ["CFG010"]
    assert "did you mean 'live'" in info.value.diagnostics[0].message


def test_load_bot_reports_its_strategys_errors(write, registry):
    write("s.yaml", STRATEGY.replace("ema(close, fast)", "emaa(close, fast)"))
    path = write("b.yaml", BOT)
    with pytest.raises(DiagnosticError) as info:
        load_bot(path, registry=registry, relative_to=path.parent)
    assert [(d.code, d.span.file) for d in info.value.diagnostics] == [("DSL002", "s.yaml")]


def test_profile_only_errors_carry_a_note(write, registry):
    write("s.yaml", STRATEGY)
    path = write("b.yaml", BOT.replace("params: {slow: 40}", "params: {slow: 400}"))
    diagnostics = validate_files([path], registry=registry, relative_to=path.parent)
    assert [(d.code, d.span.line, d.notes) for d in diagnostics] == [("CFG008", 11, ("in profile 'live'",))]
    # The base bot itself is fine, so loading it without the profile works.
    assert load_bot(path, registry=registry).model.bot == "b"


def test_validate_reports_a_shared_strategy_once(write, registry):
    write("s.yaml", STRATEGY.replace("fast_ma: ema", "fast_ma: emaa"))
    write("b1.yaml", BOT)
    write("b2.yaml", BOT.replace("bot: b", "bot: c"))
    report = validate_report([Path(write("b1.yaml", BOT)).parent], registry=registry)
    assert [d.code for d in report.diagnostics] == ["DSL002"]
    assert report.summary() == "1 error in 1 of 3 files"


def test_summary_when_valid(write, registry):
    write("s.yaml", STRATEGY)
    path = write("b.yaml", BOT)
    report = validate_report([path], registry=registry)
    assert report.ok and report.summary() == "2 files OK"


def test_resolve_secret():
    assert resolve_secret("env:K", environ={"K": "abc"}) == "abc"
    with pytest.raises(DiagnosticError) as unset:
        resolve_secret("env:MISSING", environ={})
    assert codes(unset.value) == ["CFG009"] and "MISSING is not set" in unset.value.diagnostics[0].message
    with pytest.raises(DiagnosticError) as empty:
        resolve_secret("env:K", environ={"K": ""})
    assert "is empty" in empty.value.diagnostics[0].message
    with pytest.raises(DiagnosticError) as literal:
        resolve_secret("plain-key", environ={})
    assert codes(literal.value) == ["CFG004"] and "plain-key" not in str(literal.value)


def test_resolve_secret_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("ENGINE_TEST_SECRET", "s3")
    assert resolve_secret("env:ENGINE_TEST_SECRET") == "s3"


def _candles(shared_data: Path, name: str) -> pd.DataFrame:
    frame = pd.read_csv(shared_data / name)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("date"), utc=True), name="date")
    return frame.astype("float64")


def _feed_context(loaded, candles: pd.DataFrame):
    """(context, whether the entry must fire): strategies reading the generated feeds get those over the
    candles' range; ones reading model or news series (trained or fetched by their own commands) are
    only checked to evaluate."""
    from engine.feeds.context import EvalContext, uses_external_series
    from engine.feeds.store import SeriesReader
    from engine.feeds.synth import synth_feeds, synth_positioning

    plan = loaded.strategy.plan
    if not uses_external_series(plan):
        return None, True
    reader = SeriesReader()
    since = candles.index[0] - pd.Timedelta(days=14)
    reader.extend(synth_feeds(since, candles.index[-1]))
    context = EvalContext(loaded.model.pairs[0], loaded.model.exchange.name, reader)
    # The example feeds.yaml's futures statistics, generated for this pair as the demo does.
    reader.extend(synth_positioning(context.scope, since, candles.index[-1]))
    names = {node.args[0] for node in plan.nodes if node.op == "feed"}
    return context, names <= {"fear_greed", "btc", "spx", "pos", "funding"}


@pytest.mark.parametrize("bot", sorted((ROOT / "bots").glob("*.yaml")), ids=lambda p: p.stem)
def test_example_bots_run_on_real_candles(bot, registry, shared_data):
    """Each example bot's strategy, compiled with its params, evaluates on real candles and fires."""
    loaded = load_bot(bot, registry=registry)
    strategy = loaded.strategy
    pair = loaded.model.pairs[0].replace("/", "_").replace(":", "_")
    files = sorted(shared_data.glob(f"{pair}-5m*.csv"))
    assert files, f"no 5m candles for {pair}"
    candles = _candles(shared_data, files[0].name)
    if strategy.timeframe != "5m":
        candles = resample_candles(candles, strategy.timeframe)
    assert len(candles) > strategy.warmup, "not enough candles for the warm-up"
    context, fires = _feed_context(loaded, candles)
    signals = strategy.plan.evaluate(candles, context)
    valid = signals.iloc[strategy.warmup :]
    for side in ("long", "short"):
        column = strategy.entry_column(side)
        if column is not None:
            assert valid[column].dtype == bool
            if fires:
                assert valid[column].any(), f"{column} never fires"
    stop = strategy.stop_column("stop_loss")
    if stop is not None:
        assert (valid[stop].dropna() > 0).all()
