"""Backtest equals live: the real candles give the same trades whole-history or one moment at a time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engine.backtest import PairInput, run_backtest
from engine.trading import Candle, Protections, Signals, StoplossGuard, Trader, TradingParams, Trailing

PAIRS_5M = (
    "ADA_BTC",
    "DASH_BTC",
    "ETC_BTC",
    "ETH_BTC",
    "LTC_BTC",
    "NXT_BTC",
    "TRX_BTC",
    "XLM_BTC",
    "XMR_BTC",
    "ZEC_BTC",
)


def load(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    index = pd.DatetimeIndex(pd.to_datetime(frame.pop("date"), utc=True), name="date").as_unit("ns")
    return frame.set_index(index).astype("float64")


def ema_cross(candles: pd.DataFrame, with_stops: bool) -> pd.DataFrame:
    fast = candles["close"].ewm(span=12, adjust=False).mean()
    slow = candles["close"].ewm(span=26, adjust=False).mean()
    above = fast > slow
    up = above & ~above.shift(1, fill_value=True)
    down = ~above & above.shift(1, fill_value=False)
    signals = pd.DataFrame({"entry_long": up, "exit_long": down, "entry_short": down, "exit_short": up})
    if with_stops:
        # A stop 3 average ranges away, NaN (the percentage applies) during the warm-up.
        signals["stop_distance"] = 3 * (candles["high"] - candles["low"]).rolling(14).mean()
    return signals


def live(
    frames: dict[str, pd.DataFrame], signals: dict[str, pd.DataFrame], params: TradingParams, detail=None
) -> Trader:
    trader = Trader(list(frames), params, timeframe="5m")
    rows: dict[pd.Timestamp, dict[str, tuple[Candle, Signals]]] = {}
    for pair, candles in frames.items():
        sig = signals[pair]
        flags = sig[["entry_long", "exit_long", "entry_short", "exit_short"]].to_numpy(dtype=bool).tolist()
        sd = sig["stop_distance"].tolist() if "stop_distance" in sig else [float("nan")] * len(sig)
        for k, (time, o, h, lo, c) in enumerate(candles[["open", "high", "low", "close"]].itertuples()):
            s = Signals(*flags[k], stop_distance=sd[k])
            rows.setdefault(time, {})[pair] = (Candle(time, o, h, lo, c), s)
    for time in sorted(rows):
        batch = rows[time]
        sub = None
        if detail is not None:
            sub = {p: detail[p].get(time, []) for p in batch}
        trader.on_candles(batch, detail=sub)
    trader.close_all()
    return trader


PARAMS = {
    "futures_with_protections": TradingParams(
        fee_maker=0.0002,
        fee_taker=0.001,
        slippage=0.0005,
        max_per_trade=0.3,
        max_open_trades=3,
        stop_loss=0.02,
        take_profit=0.04,
        trailing=Trailing(distance=0.015, activate_at=0.01),
        daily_loss_limit=0.03,
        daily_limit_closes_positions=True,
        market="futures",
        protections=Protections(cooldown_bars=3, stoploss_guard=StoplossGuard(3, "6h", "2h")),
    ),
    "spot_risk_sized": TradingParams(risk_per_trade=0.01, max_exposure=0.8, stop_loss=0.03, reinvest=0.5),
}


@pytest.mark.parametrize("name", list(PARAMS))
def test_real_candles_backtest_equals_live_trader(shared_data: Path, name: str):
    params = PARAMS[name]
    frames = {p: load(shared_data / f"{p}-5m.csv") for p in PAIRS_5M}
    signals = {p: ema_cross(f, with_stops=name.startswith("spot")) for p, f in frames.items()}
    result = run_backtest({p: PairInput.from_frames(frames[p], signals[p]) for p in frames}, params)
    trader = live(frames, signals, params)

    assert len(result.trades) > 50, "the scenario should trade"
    pd.testing.assert_frame_equal(result.trades, trader.trades(), check_exact=True)
    pd.testing.assert_frame_equal(result.blocked, trader.blocked(), check_exact=True)
    assert result.equity.iloc[-1] == trader.equity
    if name.startswith("futures"):
        assert set(result.trades["side"]) == {"long", "short"}
        assert {"stop_loss", "take_profit", "trailing_stop", "exit_signal", "end_of_data"} <= set(
            result.trades["exit_reason"]
        )
        assert len(result.blocked) > 0


def test_real_candles_with_detail_backtest_equals_live_trader(shared_data: Path):
    candles = load(shared_data / "XRP_ETH-5m.csv")
    minutes = load(shared_data / "XRP_ETH-1m.csv")
    signals = ema_cross(candles, with_stops=False)
    params = TradingParams(
        stop_loss=0.004, take_profit=0.004, trailing=Trailing(distance=0.003, activate_at=0.002)
    )
    result = run_backtest({"XRP/ETH": PairInput.from_frames(candles, signals, detail=minutes)}, params)
    plain = run_backtest({"XRP/ETH": PairInput.from_frames(candles, signals)}, params)

    by_candle: dict[pd.Timestamp, list[Candle]] = {}
    starts = candles.index.floor("5min")
    for time, o, h, lo, c in minutes[["open", "high", "low", "close"]].itertuples():
        k = starts.searchsorted(time.floor("5min"))
        if k < len(starts) and starts[k] == time.floor("5min"):
            by_candle.setdefault(starts[k], []).append(Candle(time, o, h, lo, c))
    trader = live({"XRP/ETH": candles}, {"XRP/ETH": signals}, params, detail={"XRP/ETH": by_candle})

    assert len(result.trades) > 10
    pd.testing.assert_frame_equal(result.trades, trader.trades(), check_exact=True)
    # The magnifier changes outcomes: exits are stamped with minute times and differ from the pessimistic run.
    assert not result.trades["close_time"].equals(plain.trades["close_time"])
