"""`engine ml` end to end on candle files the test writes: train, list, promote, rollback, errors."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from tests.engine.ml.conftest import model_text, walk

_register()
runner = CliRunner()
PAIRS = ("AAA/BTC", "BBB/BTC")


@pytest.fixture
def project(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for i, pair in enumerate(PAIRS):
        walk(31 + i, 6).to_csv(data / f"{pair.replace('/', '_')}-5m.csv", date_format="%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.yaml").write_text(model_text(pairs=PAIRS))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _args(project, *extra):
    return [
        *extra,
        "--data",
        str(project / "data"),
        "--url",
        f"sqlite:///{project / 'e.db'}",
        "--models-dir",
        str(project / "files"),
    ]


@pytest.mark.slow
def test_train_list_promote_rollback(project):
    result = runner.invoke(
        app, ["ml", "train", "models/m.yaml", *_args(project, "--export", "out/p.csv", "--workers", "1")]
    )
    assert result.exit_code == 0, result.output
    assert (
        "balanced accuracy" in result.output
        and "baseline" in result.output
        and "confusion matrix" in result.output
    )
    version = next(
        line.split()[3] for line in result.output.splitlines() if line.startswith("model m version")
    )
    frame = pd.read_csv(project / "out/p.csv")
    assert list(frame.columns[:7]) == [
        "pair",
        "time",
        "available_at",
        "p_sell",
        "p_hold",
        "p_buy",
        "predicted",
    ]
    assert set(frame["model_version"].str.split("-").str[0]) == {version}
    assert "new point-in-time prediction values stored" in result.output
    url = ["--url", f"sqlite:///{project / 'e.db'}"]
    listed = runner.invoke(app, ["ml", "list", *url])
    assert listed.exit_code == 0 and f"m                    {version}  candidate" in listed.output
    assert runner.invoke(app, ["ml", "promote", "m", version, *url]).exit_code == 0
    assert "production" in runner.invoke(app, ["ml", "list", "m", *url]).output
    rollback = runner.invoke(app, ["ml", "rollback", "m", *url])
    assert (
        rollback.exit_code == 1
        and "error[ML008]: model 'm' has no earlier production version" in rollback.output
    )
    wrong = runner.invoke(app, ["ml", "promote", "m", "nope", *url])
    assert (
        wrong.exit_code == 1 and f"unknown version 'nope' of model 'm' (versions: {version})" in wrong.output
    )
    # A file changed since training is refused at promotion.
    (project / "files" / "m" / version / "meta.json").write_text("{}")
    promoted = runner.invoke(app, ["ml", "promote", "m", version, *url])
    assert promoted.exit_code == 1 and "does not match the registry's checksum" in promoted.output


def test_walkforward_exports_parquet_and_an_html_report(project):
    args = ["--export", "p.parquet", "--workers", "1", "--report", "r/m.html"]
    result = runner.invoke(app, ["ml", "walkforward", "models/m.yaml", "--data", "data", *args])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(project / "p.parquet")) > 288
    html = (project / "r" / "m.html").read_text()
    for section in (
        "Out of sample",
        "Per window",
        "Feature importance",
        "Calibration of P(buy)",
        "Predictions over price",
    ):
        assert f"<h2>{section}" in html
    assert html.count("<svg") == 2 and "AAA/BTC" in html and "BBB/BTC" in html


def test_cli_errors_are_one_clear_line(project):
    (project / "models" / "bad.yaml").write_text(model_text(features={"a": "rsi(close, 14"}))
    bad = runner.invoke(app, ["ml", "walkforward", "models/bad.yaml", "--data", "data"])
    assert bad.exit_code == 1 and "models/bad.yaml:6:" in bad.output and "Traceback" not in bad.output
    short = runner.invoke(app, ["ml", "walkforward", "models/m.yaml", "--data", "data", "--to", "2024-01-03"])
    assert short.exit_code == 1 and "error[ML003]: too little data for the windows" in short.output
    early = runner.invoke(
        app, ["ml", "walkforward", "models/m.yaml", "--data", "data", "--from", "2024-01-02"]
    )
    assert early.exit_code == 1 and "error[ML003]: too little data before 2024-01-02T00:00Z" in early.output
    missing = runner.invoke(app, ["ml", "walkforward", "models/none.yaml", "--data", "data"])
    assert missing.exit_code == 1 and "models/none.yaml:1:1: error[CFG005]: file not found" in missing.output
    (project / "models" / "p.yaml").write_text(model_text(pairs=("ZZZ/BTC",)))
    nopair = runner.invoke(app, ["ml", "walkforward", "models/p.yaml", "--data", "data"])
    assert (
        nopair.exit_code == 1
        and "error[ML003]: ZZZ/BTC:" in nopair.output
        and "Traceback" not in nopair.output
    )
    export = runner.invoke(
        app, ["ml", "walkforward", "models/m.yaml", "--data", "data", "--export", "p.txt", "--workers", "1"]
    )
    assert export.exit_code == 1 and "use a .csv or .parquet file name" in export.output
