"""`engine sentiment` end to end (fetch from local servers, score, news, report, synth) and the news
report's numbers on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.feeds.observations import NS_PER_SECOND, Observation, to_arrays
from engine.sentiment.report import analyse
from engine.sentiment.report_html import render_html, render_text
from tests.engine.sentiment.news_fakes import cc_item, cc_news
from tests.fakes.json_service import JsonService

_register()
runner = CliRunner()
H = 3600 * NS_PER_SECOND


def walk(hours: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, hours)))
    index = pd.date_range("2024-01-01", periods=hours, freq="1h", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1.0},
        index=index,
    )


def test_event_study_finds_a_planted_move() -> None:
    candles = walk(500)
    t0 = int(candles.index[0].value)
    rows = [50, 120, 200, 310, 400]
    close = candles["close"].to_numpy().copy()
    for r in rows:  # after each hack became known (during candle r), the price drops 3% over 4 candles
        close[r + 1 :] *= 0.97
    candles["close"] = close
    events = to_arrays(
        [Observation("events.btc.hack", t0 + r * H + H // 2, t0 + r * H + H // 2, 1.0, "t") for r in rows]
    )
    report = analyse(
        candles, "1h", {"events.btc.hack": events}, coin="btc", half_life_s=6 * 3600, max_age_s=86400
    )
    hack_4 = next(e for e in report.events if e.event == "hack" and e.horizon == 4)
    assert hack_4.count == 5 and hack_4.mean < -0.02 and hack_4.high < 0
    assert report.correlations[0].n == 0  # no sentiment stored: no correlation, not a fake one


def test_correlation_sign_follows_the_data() -> None:
    candles = walk(400)
    t0 = int(candles.index[0].value)
    forward = candles["close"].shift(-4) / candles["close"] - 1
    # Items known at each close that "predict" the next 4 candles' return.
    items = [
        Observation(
            "news.btc.item",
            t0 + (k + 1) * H - 1,
            t0 + (k + 1) * H - 1,
            float(np.clip(forward.iloc[k] * 30, -1, 1)),
            "t",
        )
        for k in range(390)
    ]
    report = analyse(
        candles, "1h", {"news.btc.item": to_arrays(items)}, coin="btc", half_life_s=60, max_age_s=86400
    )
    by_h = {c.horizon: c for c in report.correlations}
    assert by_h[4].pearson > 0.8 and by_h[4].n > 350


def test_html_escapes_news_text() -> None:
    candles = walk(50)
    report = analyse(candles, "1h", {}, coin="btc", half_life_s=3600, max_age_s=86400)
    page = render_html(
        report,
        candles,
        [("2024-01-01 00:00", "evil.example", '<script>alert("x")</script><img src=x onerror=alert(1)>')],
    )
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page and "<img src=x" not in page
    assert "Caveats" in page and "Overlapping windows" in render_text(report)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_DATABASE_URL", f"sqlite:///{tmp_path / 'engine.db'}")
    (tmp_path / "bots").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_fetch_news_and_report(project) -> None:
    items = [
        cc_item(1, "Bitcoin surges past $70K as ETF inflows hit record"),
        cc_item(2, "<script>alert(1)</script> Bitcoin exchange hacked", body="Funds drained."),
    ]
    with JsonService({"/data/v2/news/": lambda q: (200, {}, cc_news(items))}) as server:
        (project / "sentiment.yaml").write_text(
            f"default_feeds: false\nsources:\n  - kind: cryptocompare\n    base_url: {server.url}\n"
        )
        result = runner.invoke(app, ["sentiment", "fetch"])
    assert result.exit_code == 0, result.output
    assert "cryptocompare: 2 items" in result.output and "stored 2 new items" in result.output
    news = runner.invoke(app, ["sentiment", "news", "--coin", "btc"])
    assert news.exit_code == 0 and "Bitcoin surges past $70K" in news.output and "alert(1)" not in news.output
    # The title's markup was dropped at ingestion; only the words are stored.
    assert "Bitcoin exchange hacked" in news.output


def test_cli_synth_and_report(project) -> None:
    walk(24 * 40).to_parquet(project / "BTC_USDT-1h.parquet")
    assert (
        runner.invoke(app, ["sentiment", "synth", "--from", "2024-01-01", "--to", "2024-02-10"]).exit_code
        == 0
    )
    result = runner.invoke(
        app, ["sentiment", "report", "--data", "BTC_USDT-1h.parquet", "--coin", "btc", "--html", "r.html"]
    )
    assert result.exit_code == 0, result.output
    assert "GENERATED news" in result.output and "pearson" in result.output and "caveats:" in result.output
    page = (project / "r.html").read_text()
    assert "<svg" in page and "Event study" in page and "GENERATED news history" in page


def test_cli_budget(project) -> None:
    result = runner.invoke(app, ["sentiment", "budget", "--day", "2024-12-06"])
    assert result.exit_code == 0, result.output
    assert "calls            0 of 200" in result.output and "the model is disabled" in result.output


def test_cli_score_and_config_errors(project) -> None:
    result = runner.invoke(app, ["sentiment", "score", "BTC looks bullish, going to the moon"])
    assert result.exit_code == 0 and "positive" in result.output and "bullish +2.3" in result.output
    (project / "sentiment.yaml").write_text("half_life: 6 hours\nmodel:\n  key: sk-live-abc\n")
    bad = runner.invoke(app, ["sentiment", "score", "x"])
    assert bad.exit_code == 1
    assert (
        "sentiment.yaml:1:12: error[CFG002]" in bad.output
        and "sentiment.yaml:3:8: error[CFG002]" in bad.output
    )
    assert "sk-live-abc" not in bad.output  # a literal key is refused without echoing its line


def test_docs_list_every_configuration_key() -> None:
    from pathlib import Path

    from engine.sentiment.config import ModelConfig, SentimentConfig, SourceConfig

    text = (Path(__file__).resolve().parents[3] / "docs" / "sentiment.md").read_text()
    for model in (SentimentConfig, SourceConfig, ModelConfig):
        for name in model.model_fields:
            assert f"`{name}`" in text, f"docs/sentiment.md does not describe {model.__name__}.{name}"


@pytest.mark.slow
def test_markup_in_headlines_stays_text_in_a_real_browser(tmp_path) -> None:
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    candles = walk(50)
    report = analyse(candles, "1h", {}, coin="btc", half_life_s=3600, max_age_s=86400)
    evil = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned2'</script>Exchange hacked"
    page = tmp_path / "report.html"
    page.write_text(render_html(report, candles, [("2024-01-01 00:00", "evil<b>.example</b>", evil)]))
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "pwned" not in dom.split("<title>")[1].split("</title>")[0]  # no script ran
    assert "&lt;script&gt;document.title='pwned2'&lt;/script&gt;Exchange hacked" in dom  # shown as text
    assert '<img src="x"' not in dom and "evil&lt;b&gt;.example&lt;/b&gt;" in dom


def test_engine_validate_checks_sentiment_yaml(project) -> None:
    (project / "sentiment.yaml").write_text(
        "sources:\n  - {kind: rss, url: 'https://x.example/feed'}\nmodel:\n  enabled: true\n  max_shift: 3\n"
    )
    bad = runner.invoke(app, ["validate", "sentiment.yaml"])
    assert bad.exit_code == 1 and "sentiment.yaml:5:14: error[CFG002]: model.max_shift" in bad.output
    (project / "sentiment.yaml").write_text("half_life: 2h\nmodel: {enabled: false}\n")
    good = runner.invoke(app, ["validate", "sentiment.yaml"])
    assert good.exit_code == 0, good.output
