"""Trading parameters: validation, durations, ccxt limits, packing, and cheap imports."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import timedelta

import pytest

from engine.trading import ExchangeLimits, LowProfitPairs, Protections, StoplossGuard, TradingParams, Trailing
from engine.trading import layout as L


def test_ccxt_market_limits_in_tick_size_and_decimal_modes():
    market = {
        "limits": {"cost": {"min": 5.0}, "amount": {"min": 0.001}},
        "precision": {"amount": 0.001, "price": 0.01},
    }
    assert ExchangeLimits.from_ccxt_market(market) == ExchangeLimits(5.0, 0.001, 0.01)
    decimals = {"limits": {}, "precision": {"amount": 3, "price": 2}}
    limits = ExchangeLimits.from_ccxt_market(decimals, tick_size=False)
    assert (
        limits.min_notional == 0
        and limits.amount_step == pytest.approx(0.001)
        and limits.price_tick == pytest.approx(0.01)
    )
    assert ExchangeLimits.from_ccxt_market({}) == ExchangeLimits()


def test_pack_puts_every_setting_in_its_column():
    params = TradingParams(
        fee_maker=0.0002,
        stop_loss=0.02,
        trailing=Trailing(0.01, 0.005),
        max_open_trades=4,
        market="futures",
        protections=Protections(
            cooldown_bars=2,
            stoploss_guard=StoplossGuard(3, "1h", 7200, only_per_pair=True),
            low_profit_pairs=LowProfitPairs(-0.01, "1d", "12h", trade_limit=2),
        ),
    )
    pi, pf = params.pack()
    assert (pi[L.I_FUTURES], pi[L.I_MAX_OPEN], pi[L.I_COOLDOWN], pi[L.I_SLG_LIMIT]) == (1, 4, 2, 3)
    assert (
        pi[L.I_SLG_LOOKBACK] == 3600 * 10**9
        and pi[L.I_SLG_STOP] == 7200 * 10**9
        and pi[L.I_SLG_PER_PAIR] == 1
    )
    assert pi[L.I_LPP_LOOKBACK] == 86400 * 10**9 and pi[L.I_LPP_TRADES] == 2 and pf[L.F_LPP_MIN] == -0.01
    assert pf[L.F_FEE_MAKER] == 0.0002 and pf[L.F_FEE_TAKER] == 0.001 and pf[L.F_SL_PCT] == 0.02
    assert (pf[L.F_TRAIL_DIST], pf[L.F_TRAIL_ACT]) == (0.01, 0.005)
    assert math.isnan(pf[L.F_TP_PCT]) and math.isnan(pf[L.F_DAILY_LIMIT]) and math.isnan(pf[L.F_MDD_MAX])
    assert TradingParams().pack()[0][L.I_MAX_OPEN] == -1
    assert StoplossGuard(1, timedelta(hours=2), "1h").lookback == 7200.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fee_taker": 0.5}, "fee_taker"),
        ({"initial_capital": 0}, "initial_capital"),
        ({"max_per_trade": 1.5}, "max_per_trade"),
        ({"max_open_trades": 0}, "max_open_trades"),
        ({"reinvest": 2}, "reinvest"),
        ({"daily_loss_limit": 0}, "daily_loss_limit"),
    ],
)
def test_out_of_range_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TradingParams(**kwargs)


def test_importing_the_packages_does_not_load_numba_or_pandas():
    code = (
        "import sys, engine.trading, engine.backtest; print('numba' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]
