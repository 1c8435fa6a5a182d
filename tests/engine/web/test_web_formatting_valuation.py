"""The pure figures behind the pages: number formats, one valuation currency over bots in several
quote currencies, an open position's live P&L and distances, and conversion closes read from candle
files (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from engine.store.enums import PositionSide
from engine.store.models import Position
from engine.web import formatting as fmt
from engine.web.position_lines import position_cells, position_line
from engine.web.prices import BotPrices, candle_sources, conversion_series, latest_rates
from engine.web.valuation import STALE_AFTER, PriceSeries, Rate, rate_at, value_portfolio

T0 = datetime(2024, 1, 8, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# ---- formats -----------------------------------------------------------------------------------


def test_money_has_the_currency_its_decimals_and_separators() -> None:
    assert fmt.money(-0.000303724, "BTC") == "-0.00030372 BTC"
    assert fmt.money(3.2338306e-06, "BTC", signed=True) == "+0.00000323 BTC"
    assert fmt.money(1234567.891, "USDT") == "1,234,567.89 USDT"
    assert fmt.money(Decimal("-54"), "USDT", signed=True) == "-54.00 USDT"
    assert fmt.money(-0.000000001, "USDT", signed=True) == "0.00 USDT"  # no "-0.00"
    assert fmt.money(1.5, "XYZ") == "1.500000 XYZ"
    assert fmt.money(None, "BTC") == fmt.DASH
    assert fmt.money(float("nan"), "BTC") == fmt.DASH
    assert "e" not in fmt.money(1e-12, "ETH")


def test_prices_follow_the_tick_else_five_significant_digits() -> None:
    assert fmt.price(30012.5) == "30,012.50"
    assert fmt.price(0.061234) == "0.061234"
    assert fmt.price(3.2338306e-06) == "0.0000032338"
    assert fmt.price(0.0612345, tick=0.00001) == "0.06123"
    assert fmt.price(30012.5, tick=Decimal("0.1")) == "30,012.5"
    assert fmt.decimals_of_step(1e-05) == 5 and fmt.decimals_of_step(10) == 0
    assert fmt.decimals_of_step(0) is None


def test_amounts_percentages_tones_and_ages() -> None:
    assert fmt.amount(1.5) == "1.5" and fmt.amount(1250) == "1,250" and fmt.amount(0.00012345) == "0.00012345"
    assert fmt.amount(1.23456, step=0.01) == "1.23"
    assert fmt.percent(0.0125) == "+1.25 %" and fmt.percent(-0.5, signed=False) == "-50.00 %"
    assert (fmt.tone(2), fmt.tone(-1), fmt.tone(0), fmt.tone(None)) == ("gain", "loss", "flat", "flat")
    assert fmt.age(at(0), at(0.75)) == "45 min"
    assert fmt.age(at(0), at(3 + 1 / 6)) == "3 h 10 min"
    assert fmt.age(at(0), at(52)) == "2 d 4 h"
    assert fmt.quote_currency("ETH/BTC") == "BTC" and fmt.quote_currency("XRP/USDT:USDT") == "USDT"


# ---- valuation ---------------------------------------------------------------------------------


BTC_USDT = PriceSeries("BTC/USDT", [at(0), at(1), at(2)], [30_000.0, 31_000.0, 32_000.0], "test candles")


def test_a_rate_is_the_last_close_known_then_and_flagged_stale_when_old() -> None:
    assert rate_at(BTC_USDT, at(-1)) is None  # nothing known before the first close
    assert rate_at(BTC_USDT, at(1.5)).value == 31_000.0  # never a later close
    fresh = rate_at(BTC_USDT, at(2.5))
    assert not fresh.stale and fresh.as_of == at(2)
    assert rate_at(BTC_USDT, at(2) + STALE_AFTER + timedelta(minutes=1)).stale
    inverted = PriceSeries("USDT/BTC", [at(0)], [1 / 25_000], "x", inverted=True)
    assert rate_at(inverted, at(1)).value == pytest.approx(25_000.0)


def test_bots_in_btc_and_usdt_are_valued_in_one_currency_with_each_currencys_figures() -> None:
    series = {
        1: [(at(0), 1.0), (at(2), 1.1)],  # a BTC bot: +0.1 BTC
        2: [(at(0), 1000.0), (at(2), 990.0)],  # a USDT bot: -10 USDT
    }
    v = value_portfolio(series, {1: "BTC", 2: "USDT"}, "USDT", {"BTC": BTC_USDT})
    by = {c.currency: c for c in v.per_currency}
    assert by["BTC"].equity == pytest.approx(1.1) and by["BTC"].pnl.all_time == pytest.approx(0.1)
    assert by["USDT"].equity == pytest.approx(990.0) and by["USDT"].rate.value == 1.0
    # The total: 1.1 BTC at 32,000 plus 990 USDT, never 1.1 + 990.
    assert v.equity == pytest.approx(1.1 * 32_000 + 990)
    assert v.pnl.all_time == pytest.approx(0.1 * 32_000 - 10)
    # The curve values each point at the rate of its time.
    assert v.curve == [
        (at(0), pytest.approx(1.0 * 30_000 + 1000)),
        (at(2), pytest.approx(1.1 * 32_000 + 990)),
    ]
    assert v.notes == () and not v.stale
    # In BTC without a USDT/BTC (or BTC/USDT) price: the USDT bot is left out, with a note.
    in_btc = value_portfolio(series, {1: "BTC", 2: "USDT"}, "BTC", {})
    assert in_btc.equity == pytest.approx(1.1)
    assert in_btc.notes == ("no USDT/BTC price known: USDT bots are not in the total",)


def test_without_a_series_the_latest_known_rate_is_used_and_an_old_one_is_stale() -> None:
    series = {1: [(at(0), 2.0), (at(5), 2.0)]}
    latest = {"BTC": Rate(40_000.0, at(1), "last BTC/USDT close of a bot")}
    v = value_portfolio(series, {1: "BTC"}, "USDT", {}, latest=latest)
    assert v.equity == pytest.approx(80_000.0)
    assert v.stale and "stale" in v.notes[0]
    assert value_portfolio({}, {}, "USDT", {}).equity is None


def test_latest_rates_come_from_the_bots_last_closes() -> None:
    bots = [
        BotPrices(1, ("BTC/USDT",), at(1), "5m", closes={"BTC/USDT": 42_000.0}),
        BotPrices(2, ("USDT/BTC",), at(2), "5m", closes={"USDT/BTC": 1 / 40_000}),
        BotPrices(3, ("ETH/BTC",), at(3), "5m", closes={"ETH/BTC": 0.05}),
    ]
    rates = latest_rates(bots, "USDT")
    # Two bots know BTC in USDT: the newer close wins (the inverse pair's, at(2)).
    assert set(rates) == {"BTC"} and rates["BTC"].value == pytest.approx(40_000.0)
    assert rates["BTC"].as_of == at(2)
    assert latest_rates(bots, "BTC")["USDT"].value == pytest.approx(1 / 40_000)


# ---- positions -----------------------------------------------------------------------------------


def position(side: PositionSide, **levels: str) -> Position:
    return Position(
        id=7,
        bot_id=1,
        pair="ETH/BTC",
        side=side,
        amount=Decimal("2"),
        entry_price=Decimal("0.05"),
        stop=Decimal(levels["stop"]) if "stop" in levels else None,
        take_profit=Decimal(levels["tp"]) if "tp" in levels else None,
        opened_at=at(0),
    )


def test_a_long_position_with_its_price_pnl_and_distances() -> None:
    prices = BotPrices(1, ("ETH/BTC",), at(2), "5m", closes={"ETH/BTC": 0.051}, ticks={"ETH/BTC": 0.00001})
    line = position_line(position(PositionSide.LONG, stop="0.048", tp="0.0561"), "trend", prices)
    assert line.pnl == pytest.approx(0.002) and line.pnl_ratio == pytest.approx(0.02)
    cells = position_cells(line, at(2.5))
    assert cells["current"] == "0.05100" and cells["entry"] == "0.05000"
    assert cells["pnl"] == "+0.00200000 BTC" and cells["pnl_pct"] == "+2.00 %" and cells["tone"] == "gain"
    assert cells["stop"] == "0.04800 (-5.88 %)" and cells["take_profit"] == "0.05610 (+10.00 %)"
    assert cells["age"] == "2 h 30 min" and cells["bot"] == "trend"


def test_a_short_position_loses_as_the_price_rises_and_a_trailing_stop_shows() -> None:
    prices = BotPrices(1, ("ETH/BTC",), at(2), "5m", closes={"ETH/BTC": 0.052}, trailing={"ETH/BTC": 0.053})
    line = position_line(position(PositionSide.SHORT, stop="0.055"), "s", prices)
    assert line.pnl == pytest.approx(-0.004)
    cells = position_cells(line, None)
    assert cells["tone"] == "loss" and cells["pnl"] == "-0.00400000 BTC"
    assert cells["stop"].startswith("0.053000 trailing")
    # No price known yet: the row says so with dashes, not zeros.
    bare = position_cells(position_line(position(PositionSide.LONG), "s", None), None)
    assert (bare["current"], bare["pnl"], bare["stop"]) == (fmt.DASH, fmt.DASH, fmt.DASH)


# ---- conversion closes from candle files ---------------------------------------------------------


def test_conversion_closes_come_from_the_replay_files_direct_or_inverse(tmp_path: Path) -> None:
    from engine.data.naming import candle_filename
    from engine.data.synth import synth_candles

    start = pd.Timestamp("2024-01-01", tz="UTC")
    candles = synth_candles("BTC/USDT", "5m", start, start + pd.Timedelta(hours=2), seed=1)
    candles.to_parquet(tmp_path / candle_filename("BTC/USDT", "5m"))
    sources = candle_sources(tmp_path)
    direct = conversion_series("BTC", "USDT", sources)
    assert direct is not None and not direct.inverted and direct.pair == "BTC/USDT"
    assert direct.times[0] == (start + pd.Timedelta(minutes=5)).to_pydatetime()  # known at its close
    assert direct.closes[-1] == pytest.approx(float(candles["close"].iloc[-1]))
    inverse = conversion_series("USDT", "BTC", sources)
    assert inverse is not None and inverse.inverted
    assert conversion_series("ETH", "USDT", sources) is None


# ---- realised profit per day -----------------------------------------------------------------------


def test_daily_profit_converts_each_trade_at_its_close_and_keeps_a_running_total() -> None:
    from engine.web.profit import cumulative, daily_profit, profit_chart

    trades = [
        (at(0.5), 0.001, "ETH/BTC"),  # BTC at 30,000 then: +30 USDT
        (at(1.5), -0.002, "LTC/BTC"),  # at 31,000: -62 USDT
        (at(25), 10.0, "XRP/USDT:USDT"),  # the next day, already in USDT
        (at(26), 1.0, "ADA/ETH"),  # no ETH rate: left out, counted
    ]
    days, left_out = daily_profit(trades, "USDT", {"BTC": BTC_USDT})
    assert left_out == 1
    assert [(d.isoformat(), round(v, 6)) for d, v in days] == [("2024-01-08", -32.0), ("2024-01-09", 10.0)]
    assert [round(v, 6) for _, v in cumulative(days)] == [-32.0, -22.0]
    options = profit_chart(days, "USDT")
    bars, line = options["series"]
    assert options["title"]["text"] == "Realised profit (USDT)"
    assert [b["itemStyle"]["color"] for b in bars["data"]] == ["#dc2626", "#16a34a"]  # loss red, gain green
    assert line["data"] == [-32.0, -22.0] and line["yAxisIndex"] == 1
    # A bot in its own currency needs no rate.
    assert daily_profit(trades[:2], "BTC")[0] == [(at(0).date(), pytest.approx(-0.001))]
