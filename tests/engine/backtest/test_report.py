"""The HTML backtest report: well-formed, offline, escaped, one marker per fill, consistent numbers, fast."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from engine.backtest._svg import aggregate_factor, envelope_indices, is_price_scale, nice_ticks
from engine.backtest.report import MAX_TRADE_ROWS, monthly_returns, render_report, write_report
from engine.backtest.session import run_bot_backtest
from engine.data.synth import synth_candles

ROOT = Path(__file__).resolve().parents[3]
STRATEGY = ROOT / "strategies" / "ema_rsi.yaml"
VOID = {"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "source", "wbr"}
PAIRS_10 = [
    "ADA/BTC",
    "DASH/BTC",
    "ETC/BTC",
    "ETH/BTC",
    "LTC/BTC",
    "NXT/BTC",
    "TRX/BTC",
    "XLM/BTC",
    "XMR/BTC",
    "ZEC/BTC",
]


def bot_file(
    folder: Path, pairs: list[str], *, name: str = "report-test", description: str = "a test bot"
) -> Path:
    text = f"""bot: {name}
description: {description!r}
strategy: {STRATEGY}
params: {{fast: 9}}
exchange: {{name: binance, mode: backtest}}
pairs: [{", ".join(pairs)}]
capital: {{initial: 1 BTC, max_per_trade: 10%}}
risk: {{max_exposure: 60%, max_open_trades: 6, stop_loss: 3%}}
fees: {{maker: 0.1%, taker: 0.1%}}
"""
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class StrictHTML(HTMLParser):
    """Collects the element structure and fails on unbalanced or misnested tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.titles: list[str] = []
        self.doctype = False
        self._in_title = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)
        self._in_title = tag == "title"

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()
        self._in_title = False

    def handle_data(self, data):
        if self._in_title and self.stack and self.stack[-1] == "title":
            self.titles.append(data)


def parse(html: str) -> StrictHTML:
    parser = StrictHTML()
    parser.feed(html)
    parser.close()
    assert parser.doctype, "missing <!DOCTYPE html>"
    assert not parser.errors, parser.errors[:5]
    assert not parser.stack, f"unclosed: {parser.stack}"
    return parser


def classes(parser: StrictHTML, cls: str) -> list[dict[str, str | None]]:
    return [attrs for _, attrs in parser.elements if cls in (attrs.get("class") or "").split()]


@pytest.fixture(scope="module")
def real_run(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    return run_bot_backtest(bot_file(folder, ["ETH/BTC", "LTC/BTC"]), data_dir=shared_data)


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory):
    """Four months of synthetic 5m candles, so that the monthly table has several rows."""
    folder = tmp_path_factory.mktemp("synth")
    data = folder / "data"
    data.mkdir()
    for i, pair in enumerate(("ETH/BTC", "LTC/BTC")):
        frame = synth_candles(pair, "5m", "2024-01-01", "2024-04-20", seed=7 + i)
        frame.to_parquet(data / f"{pair.replace('/', '_')}-5m.parquet")
    return run_bot_backtest(bot_file(folder, ["ETH/BTC", "LTC/BTC"]), data_dir=data)


def test_report_is_valid_offline_html(real_run, tmp_path):
    path = write_report(real_run, tmp_path / "out" / "report.html")
    html = path.read_text(encoding="utf-8")
    parser = parse(html)
    assert "http://" not in html and "https://" not in html
    for _, attrs in parser.elements:
        for key in ("src", "href"):
            assert attrs.get(key) is None, f"external resource via {key}: {attrs[key]}"
    assert [tag for tag, _ in parser.elements].count("script") == 1  # the inline tab switcher only
    sections = re.findall(r"<h2>(.*?)</h2>", html)
    assert sections == [
        "Metrics",
        "Equity and drawdown",
        "Monthly returns",
        "Per pair",
        "Charts",
        "Blocked entries",
        "Trades",
    ]
    assert "SYNTHETIC DATA" not in html


def test_one_marker_per_entry_and_exit_with_its_reason(real_run):
    trades = real_run.result.trades
    assert len(trades) > 20
    parser = parse(render_report(real_run))
    entries = classes(parser, "mk-entry")
    exits = classes(parser, "mk-exit")
    assert len(entries) == len(exits) == len(trades)
    html = render_report(real_run)
    for reason, count in trades["exit_reason"].value_counts().items():
        assert len(re.findall(rf"exit: {reason} ", html)) == count
    # Each pair's pane holds exactly that pair's markers.
    for pair, frame in trades.groupby("pair"):
        pane = html.split(f"<h3>{pair} ")[1].split("</svg>")[0]
        assert pane.count('class="mk mk-entry') == len(frame)


def test_trade_list_and_per_pair_rows(real_run):
    html = render_report(real_run)
    trades_table = html.split('<table class="trades">')[1].split("</table>")[0]
    assert trades_table.count("<tr>") == len(real_run.result.trades) + 1  # + header
    per_pair = html.split("<h2>Per pair</h2>")[1].split("</table>")[0]
    assert per_pair.count("<tr>") == len(real_run.candles) + 1


def test_hostile_names_are_escaped(real_run):
    evil = "<script>alert('x')</script>"
    model = real_run.bot.model.model_copy(
        update={"bot": evil, "description": '"><img src=x onerror=alert(1)>'}
    )
    bot = dataclasses.replace(real_run.bot, model=model)
    trades = real_run.result.trades.copy()
    trades["pair"] = trades["pair"].replace({"ETH/BTC": "ETH/<b>BTC"})
    result = dataclasses.replace(real_run.result, trades=trades)
    candles = {("ETH/<b>BTC" if k == "ETH/BTC" else k): v for k, v in real_run.candles.items()}
    run = dataclasses.replace(real_run, bot=bot, result=result, candles=candles)
    html = render_report(run)
    parser = parse(html)
    assert evil not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "ETH/&lt;b&gt;BTC" in html
    tags = [tag for tag, _ in parser.elements]
    assert tags.count("script") == 1 and "img" not in tags and "b" not in tags
    assert parser.titles[0] == f"{evil} · ema_rsi · backtest"  # the text survives, as text


def test_monthly_returns_compound_to_the_total(synth_run):
    result = synth_run.result
    initial = result.metrics["initial_capital"]
    months = monthly_returns(result.equity, initial)
    assert len(months) == 4
    assert np.prod(1.0 + months.to_numpy()) - 1.0 == pytest.approx(result.metrics["total_return"], abs=1e-12)
    html = render_report(synth_run)
    cells = re.findall(r'<td class="m[^"]*" data-r="([^"]+)">([^<]+)</td>', html)
    assert len(cells) == 4
    exact = [float(r) for r, _ in cells]
    shown = [float(text.rstrip("%")) / 100 for _, text in cells]
    total = result.metrics["total_return"]
    assert np.prod(1.0 + np.array(exact)) - 1.0 == pytest.approx(total, abs=1e-12)
    # What a reader sees (two decimals of a percent) compounds to the total within that rounding.
    assert np.prod(1.0 + np.array(shown)) - 1.0 == pytest.approx(total, abs=len(shown) * 5e-5 * 1.1)
    year_total = re.search(r'<td class="total[^"]*">([^<]+)</td>', html)
    assert year_total is not None
    assert float(year_total.group(1).rstrip("%")) / 100 == pytest.approx(total, abs=5e-5)


def test_synthetic_badge_and_empty_results(synth_run):
    run = dataclasses.replace(synth_run, synthetic=True)
    assert "SYNTHETIC DATA</span>" in render_report(run)
    empty = dataclasses.replace(
        synth_run.result,
        trades=synth_run.result.trades.iloc[:0],
        blocked=synth_run.result.blocked.iloc[:0],
    )
    html = render_report(dataclasses.replace(synth_run, result=empty))
    parser = parse(html)
    assert (
        not classes(parser, "mk-entry")
        and "no trades" in html
        and "none: every entry signal was taken" in html
    )


def test_long_series_are_aggregated_and_features_placed(synth_run):
    html = render_report(synth_run)
    candles = len(next(iter(synth_run.candles.values())))
    assert candles > 20_000
    factor = aggregate_factor(candles, 1500)
    assert factor == -(-candles // 1500)
    # 3 units per bar: the candle chart stays about 1,500 bars wide whatever the data length.
    widths = [float(w) for w in re.findall(r'<svg class="chart" viewBox="0 0 ([0-9.]+) ', html)]
    assert max(widths) <= 1500 * 3 + 100
    # The EMAs are drawn over the price, the RSI in its own panel.
    pane = html.split("<h3>ETH/BTC ")[1].split("</svg>")[0]
    assert "<title>fast_ma</title>" in pane and "<title>slow_ma</title>" in pane
    assert re.search(r'<text class="panel"[^>]*>momentum</text>', pane)
    assert len(html) < 2_500_000


def test_chart_helpers():
    values = np.sin(np.linspace(0, 20, 100_000))
    values[500] = 5.0
    values[70_000] = -7.0
    values[90_000:90_500] = np.nan
    keep = envelope_indices(values, 1000)
    assert len(keep) <= 1010 and keep[0] == 0 and keep[-1] == len(values) - 1
    assert 500 in keep and 70_000 in keep and np.all(np.diff(keep) > 0)
    assert list(envelope_indices(values[:10], 1000)) == list(range(10))
    assert nice_ticks(0.0, 1.0, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(-3.0, 97.0, 4) == [0.0, 25.0, 50.0, 75.0]
    assert nice_ticks(0.08251, 0.106, 4) == [0.085, 0.09, 0.095, 0.1, 0.105]
    close = np.linspace(100, 110, 50)
    assert is_price_scale(close * 1.01, close)
    assert not is_price_scale(np.full(50, 55.0), close)
    assert not is_price_scale(np.full(50, np.nan), close)


def test_trade_list_is_capped(real_run, monkeypatch):
    import engine.backtest.report as report

    assert MAX_TRADE_ROWS >= 1000
    monkeypatch.setattr(report, "MAX_TRADE_ROWS", 5)
    html = render_report(real_run)
    table = html.split('<table class="trades">')[1].split("</table>")[0]
    assert table.count("<tr>") == 6
    assert f"first 5 of {len(real_run.result.trades):,} trades" in html
    # The chart still marks every trade.
    assert html.count('class="mk mk-exit') == len(real_run.result.trades)


def test_ten_real_pairs_render_within_bounds(shared_data, tmp_path):
    """Ten pairs of 5,760 candles: every pane, every trade marker, and a file that stays small (the
    render time, about 0.25 s, is measured in docs/backtesting.md rather than asserted here)."""
    run = run_bot_backtest(bot_file(tmp_path, PAIRS_10), data_dir=shared_data)
    assert len(run.candles) == 10 and min(len(c) for c in run.candles.values()) > 5_000
    path = write_report(run, tmp_path / "ten.html")
    html = path.read_text(encoding="utf-8")
    parser = parse(html)
    assert len(classes(parser, "pane")) == 10
    assert len(classes(parser, "mk-entry")) == len(run.result.trades) > 100
    assert path.stat().st_size < 3_000_000
