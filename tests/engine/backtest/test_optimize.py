"""`engine optimize`: walk-forward windows, the search space, seeded studies, workers, the CLI and --write."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dsl.errors import DiagnosticError
from engine.backtest._studies import _chunks
from engine.backtest.from_config import trading_params
from engine.backtest.optimize import (
    PENALTY,
    Evaluator,
    OptimizeSettings,
    objective_value,
    optimize_bot,
    search_space,
    stitch_results,
    write_bot_params,
)
from engine.backtest.session import run_bot_backtest
from engine.backtest.walkforward import walk_forward_windows
from engine.cli import _register, app
from engine.config import load_bot, load_strategy
from engine.data.source import open_source

_register()  # every command, so that `optimize` is a sub-command as in the installed CLI
ROOT = Path(__file__).resolve().parents[3]
T0 = pd.Timestamp("2024-01-01", tz="UTC")
FIVE = pd.Timedelta(minutes=5)

BOT = """# An optimisation test bot.
bot: opt-test   # the name
description: EMA/RSI on two pairs
strategy: {strategy}

# Overrides, kept by --write:
params:
  fast: 9      # short EMA
  rsi_max: 72  # RSI ceiling

exchange:
  name: binance
  mode: backtest
pairs: [ETH/BTC, LTC/BTC]
capital: {{initial: 1 BTC, max_per_trade: 20%}}
risk: {{max_exposure: 60%, max_open_trades: 2}}
fees: {{maker: 0.1%, taker: 0.1%}}
"""


def make_bot(folder: Path, text: str = BOT, name: str = "opt.yaml") -> Path:
    path = folder / name
    path.write_text(text.format(strategy=ROOT / "strategies" / "ema_rsi.yaml"), encoding="utf-8")
    return path


# ----- walk-forward windows ------------------------------------------------------------------------
def test_rolling_windows_example():
    windows = walk_forward_windows(T0, T0 + 1000 * FIVE, "5m", folds=3, train_ratio=0.7)
    # 1000 = train + 3 * test with train / (train + test) = 0.7 -> test 187, train 439.
    assert [(w.train_start, w.train_end, w.test_end) for w in windows] == [
        (T0 + k * 187 * FIVE, T0 + (439 + k * 187) * FIVE, T0 + (439 + (k + 1) * 187) * FIVE)
        for k in range(3)
    ]
    anchored = walk_forward_windows(T0, T0 + 1000 * FIVE, "5m", folds=3, anchored=True)
    assert all(w.train_start == T0 for w in anchored)
    assert [w.test for w in anchored] == [w.test for w in windows]


@settings(max_examples=300, deadline=None)
@given(
    candles=st.integers(10, 200_000),
    folds=st.integers(1, 10),
    ratio=st.floats(0.05, 0.95),
    anchored=st.booleans(),
    extra=st.integers(0, 299),
)
def test_windows_never_let_test_overlap_train(candles, folds, ratio, anchored, extra):
    start = T0 + pd.Timedelta(minutes=5 * 17)
    end = start + candles * FIVE + pd.Timedelta(seconds=extra)  # a partial candle at the end is dropped
    try:
        windows = walk_forward_windows(start, end, "5m", folds=folds, train_ratio=ratio, anchored=anchored)
    except DiagnosticError as error:
        assert error.diagnostics[0].code == "OPT002"
        assert "too few" in error.diagnostics[0].message
        return
    assert len(windows) == folds
    test_len = windows[0].test_end - windows[0].test_start
    for k, w in enumerate(windows):
        assert w.fold == k + 1
        assert start <= w.train_start < w.train_end == w.test_start < w.test_end <= end
        assert w.test_end - w.test_start == test_len  # equal test parts
        assert w.train_end - w.train_start >= 20 * FIVE and test_len >= 20 * FIVE
        for t in (w.train_start, w.train_end, w.test_end):
            assert (t - start) % FIVE == pd.Timedelta(0)  # on candle boundaries
        if k:
            assert w.test_start == windows[k - 1].test_end  # test parts tile, never overlap
        if anchored:
            assert w.train_start == start
        else:
            assert w.train_end - w.train_start == windows[0].train_end - windows[0].train_start
    assert end - windows[-1].test_end < FIVE
    if not anchored:
        train = windows[0].train_end - windows[0].train_start
        share = train / (train + test_len)
        # Test parts are whole candles (rounded down): train absorbs up to one candle per fold.
        window = candles / (1 + (folds - 1) * (1 - ratio))
        assert abs(share - ratio) <= (folds + 1) / window


def test_window_arguments_are_checked():
    for kwargs in ({"folds": 0}, {"folds": 2, "train_ratio": 1.0}, {"folds": 50}):
        with pytest.raises(DiagnosticError) as error:
            walk_forward_windows(T0, T0 + 500 * FIVE, "5m", **kwargs)
        assert error.value.diagnostics[0].code == "OPT002"


# ----- search space ------------------------------------------------------------------------------
STRATEGY = """strategy: grid
timeframe: 5m
inputs:
  odd: {default: 5, range: [3, 10], step: 2}
  ratio: {default: 0.3, range: [0.1, 0.55], step: 0.1}
  smooth: {default: 1.5, range: [1.0, 2.0]}
  fixed: {default: 14}
  flag: {default: true}
features:
  m: rsi(close, fixed)
entry:
  long: m < odd * 10 and (flag or m > ratio * smooth)
exit:
  long: m > 70
"""


def test_search_space_respects_ranges_steps_and_kinds(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(STRATEGY, encoding="utf-8")
    space = {p.name: p for p in search_space(load_strategy(path))}
    assert set(space) == {"odd", "ratio", "smooth", "flag"}  # 'fixed' declares no range
    assert (space["odd"].kind, space["odd"].low, space["odd"].high, space["odd"].step) == ("int", 3, 9, 2)
    assert space["ratio"].high == pytest.approx(0.5) and space["ratio"].step == 0.1
    assert space["smooth"].step is None and space["flag"].kind == "bool"
    seen: dict[str, set] = {name: set() for name in space}

    def objective(trial):
        for name, param in space.items():
            seen[name].add(param.suggest(trial))
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=120)
    assert seen["odd"] == {3, 5, 7, 9} and all(type(v) is int for v in seen["odd"])
    assert seen["ratio"] <= {0.1, 0.2, 0.3, 0.4, 0.5} and len(seen["ratio"]) >= 4  # clean grid values
    assert all(1.0 <= v <= 2.0 and type(v) is float for v in seen["smooth"]) and len(seen["smooth"]) > 50
    assert seen["flag"] == {False, True}
    # Every suggestion is a value the strategy accepts.
    load_strategy(path, params={"odd": 9, "ratio": 0.5, "smooth": 2.0, "flag": False})
    assert [p.name for p in search_space(load_strategy(path), ["odd", "flag"])] == ["odd", "flag"]
    with pytest.raises(DiagnosticError, match=r"no input 'od'.*did you mean 'odd'"):
        search_space(load_strategy(path), ["od"])
    with pytest.raises(DiagnosticError, match="'fixed' declares no range"):
        search_space(load_strategy(path), ["fixed"])


def test_objective_value_guards():
    assert objective_value({"trades": 12, "sharpe": 1.5}, "sharpe", 10) == 1.5
    assert objective_value({"trades": 3, "sharpe": 9.0}, "sharpe", 10) == PENALTY + 3
    assert objective_value({"trades": 30, "sharpe": math.nan}, "sharpe", 10) == PENALTY + 30
    assert objective_value({"trades": 30, "profit_factor": math.inf}, "profit_factor", 10) == 1e6
    assert _chunks(100, 2) == [17] * 5 + [15] and sum(_chunks(7, 4)) == 7


# ----- evaluation on real candles ------------------------------------------------------------------
@pytest.fixture(scope="module")
def bot_path(tmp_path_factory):
    return make_bot(tmp_path_factory.mktemp("opt"))


def test_window_run_equals_a_backtest_of_that_range(bot_path, shared_data):
    """Warm-up before the window, trades only inside it: exactly what `engine backtest --from --to` does."""
    bot = load_bot(bot_path)
    source = open_source(data_dir=shared_data)
    candles = {pair: source.load(pair, "5m") for pair in bot.model.pairs}
    evaluator = Evaluator(bot, candles, trading_params(bot))
    start, end = pd.Timestamp("2018-01-15", tz="UTC"), pd.Timestamp("2018-01-22", tz="UTC")
    ours = evaluator.run({}, start, end)
    reference = run_bot_backtest(bot_path, data_dir=shared_data, start=start, end=end).result
    assert len(ours.trades) > 10
    pd.testing.assert_frame_equal(ours.trades, reference.trades)
    # end_of_data closes the last positions at the close of the last candle, i.e. at `end`.
    assert ours.trades["open_time"].min() >= start and ours.trades["close_time"].max() <= end
    assert ours.equity.index[0] == start and ours.equity.index[-1] == end - FIVE
    # Params change the trades; identical params reuse the compiled strategy.
    other = evaluator.run({"fast": 20, "slow": 60}, start, end)
    evaluator.run({"fast": 20, "slow": 60}, start, end)
    assert evaluator.compiles == 2 and not other.trades.equals(ours.trades)  # the bot's params, then these
    # Two consecutive windows chained into one account compound their returns.
    later = evaluator.run({}, end, end + pd.Timedelta(days=4))
    chained = stitch_results([ours, later], 1.0)
    r1, r2 = ours.metrics["total_return"], later.metrics["total_return"]
    assert chained["total_return"] == pytest.approx((1 + r1) * (1 + r2) - 1)
    assert chained["trades"] == len(ours.trades) + len(later.trades)


def test_seeded_single_job_runs_repeat_exactly(bot_path, shared_data):
    config = OptimizeSettings(
        trials=14, folds=2, seed=7, jobs=1, min_trades=3
    )  # past the 10 random startup trials
    first = optimize_bot(bot_path, data_dir=shared_data, settings=config)
    second = optimize_bot(bot_path, data_dir=shared_data, settings=config)
    assert [f.best_params for f in first.folds] == [f.best_params for f in second.folds]
    assert [f.out_of_sample["sharpe"] for f in first.folds] == [
        f.out_of_sample["sharpe"] for f in second.folds
    ]
    assert first.recommended == second.recommended == first.folds[-1].best_params
    space = {p.name: p for p in first.space}
    for fold in first.folds:
        assert fold.trials == 14
        assert fold.window.train_end == fold.window.test_start
        for name, value in fold.best_params.items():
            assert space[name].low <= value <= space[name].high
        # The in-sample metric is the study's best objective value, re-run.
        assert fold.in_sample["trades"] >= 3
    assert first.oos["trades"] == sum(f.out_of_sample["trades"] for f in first.folds)
    assert set(first.current) == {"fast", "slow", "rsi_max", "stop_atr"} and first.current["fast"] == 9


def test_parallel_workers_share_each_fold_study(bot_path, shared_data):
    ticks: list[tuple[int, int]] = []
    config = OptimizeSettings(trials=6, folds=2, seed=1, jobs=2, min_trades=3, only=("fast", "slow"))
    result = optimize_bot(
        bot_path, data_dir=shared_data, settings=config, progress=lambda d, t: ticks.append((d, t))
    )
    assert result.jobs == 2
    assert [f.trials for f in result.folds] == [6, 6]
    assert ticks and ticks[-1] == (12, 12)
    for fold in result.folds:
        assert set(fold.best_params) == {"fast", "slow"}
        assert 5 <= fold.best_params["fast"] <= 30 and 20 <= fold.best_params["slow"] <= 100


# ----- the command line and --write ----------------------------------------------------------------
def test_cli_prints_the_is_oos_table_and_writes_params(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")
    path = make_bot(tmp_path)
    before = path.read_text(encoding="utf-8")
    out = CliRunner().invoke(
        app,
        ["optimize", str(path), "--data", str(shared_data), "--trials", "5", "--folds", "2", "--jobs", "1",
         "--min-trades", "2", "--seed", "3", "--write", "--json", str(tmp_path / "r.json")],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    text = out.output
    for expected in ("walk-forward", "sharpe in sample (IS, train) vs out of sample (OOS, test)", "OOS/IS",
                     "out of sample, test windows chained", "degradation (OOS/IS)", "recommended:", "trials/s",
                     f"params written to {path}"):  # fmt: skip
        assert expected in text, expected
    saved = json.loads((tmp_path / "r.json").read_text())
    assert len(saved["folds"]) == 2 and saved["recommended"] == saved["folds"][-1]["best_params"]
    # One table row per fold with its in-sample and out-of-sample sharpe.
    for fold in saved["folds"]:
        row = next(line for line in text.splitlines() if line.startswith(f"│ {fold['fold']:>4} │"))
        cells = [cell.strip() for cell in row.split("│")[1:-1]]
        assert (
            cells[1]
            == f"{pd.Timestamp(fold['train'][0]):%m-%d %H:%M}→{pd.Timestamp(fold['train'][1]):%m-%d %H:%M}"
        )
        for cell, value in (
            (cells[3], fold["in_sample"]["sharpe"]),
            (cells[4], fold["out_of_sample"]["sharpe"]),
        ):
            assert cell == ("-" if value is None else f"{value:.3f}")
        assert cells[6:8] == [str(fold["in_sample"]["trades"]), str(fold["out_of_sample"]["trades"])]
    after = path.read_text(encoding="utf-8")
    assert load_bot(path).model.params == saved["recommended"]
    # Comments, key order and untouched lines survive the round trip.
    kept = [line for line in before.splitlines() if not line.startswith(("  fast:", "  rsi_max:"))]
    for line in kept:
        assert line in after.splitlines()
    assert "  fast: " in after and "# short EMA" in after and "# RSI ceiling" in after
    # The new keys join the params block, above the blank line that separates it from `exchange:`.
    block = after.split("params:\n")[1].split("\n\n")[0].splitlines()
    assert sorted(line.split(":")[0].strip() for line in block) == ["fast", "rsi_max", "slow", "stop_atr"]


def test_write_inserts_a_params_section_and_refuses_invalid_values(tmp_path):
    text = BOT.replace(
        "# Overrides, kept by --write:\nparams:\n  fast: 9      # short EMA\n  rsi_max: 72  # RSI ceiling\n",
        "",
    )
    path = make_bot(tmp_path, text)
    write_bot_params(path, {"slow": 40, "stop_atr": 2.5})
    lines = path.read_text(encoding="utf-8").splitlines()
    at = lines.index("params:")
    assert lines[at - 1].startswith("strategy: ")
    assert lines[at + 1 : at + 5] == ["  slow: 40", "  stop_atr: 2.5", "", ""]  # the blank lines stay below
    assert load_bot(path).model.params == {"slow": 40, "stop_atr": 2.5}
    before = path.read_text(encoding="utf-8")
    with pytest.raises(DiagnosticError, match="outside the range"):
        write_bot_params(path, {"slow": 500})
    assert path.read_text(encoding="utf-8") == before
    assert not list(tmp_path.glob(".*tmp"))


def test_cli_reports_bad_settings_without_a_traceback(tmp_path, shared_data):
    path = make_bot(tmp_path)
    runner = CliRunner()
    bad_metric = runner.invoke(app, ["optimize", str(path), "--data", str(shared_data), "--metric", "sharp"])
    assert bad_metric.exit_code == 1
    assert "error[OPT001]" in bad_metric.output and "did you mean 'sharpe'" in bad_metric.output
    too_many = runner.invoke(app, ["optimize", str(path), "--data", str(shared_data), "--folds", "1000"])
    assert too_many.exit_code == 1 and "error[OPT002]" in too_many.output and "too few" in too_many.output
    assert "Traceback" not in bad_metric.output + too_many.output
