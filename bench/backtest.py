"""Backtest kernel benchmark: our numba kernel against vectorbt's ``Portfolio.from_signals``.

    .venv/bin/python bench/backtest.py                 # 10 pairs x 1 year of 1m candles (5.26M), both engines
    .venv/bin/python bench/backtest.py --real          # the 10 real 5m pairs in ../shared/data/binance
    .venv/bin/python bench/backtest.py --no-vectorbt   # ours only

Each engine runs in its own process, which the parent times from start to exit (whole process:
interpreter, imports, numba cache load, data, signals, simulation). The child also reports its own
phases. Synthetic candles are a seeded random walk, so every run sees the same data; signals are an
EMA(12)/EMA(26) cross with an RSI(14) filter, computed vectorised with pandas.

vectorbt needs the ``bench`` dependency group (``ENGINE_GROUPS=bench bash .ci/setup``). It gets the
same signals, shifted one candle and filled at the open (our fill rule), the same fee, and one
shared cash pool; it has no stops here because its stop model differs from ours.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = ROOT.parent / "shared" / "data" / "binance"
REAL_PAIRS = (
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
MINUTE_NS = 60_000_000_000
FEE = 0.001


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def synthetic(pairs: int, candles: int, seed: int = 7):
    """``pairs`` seeded random walks of ``candles`` 1m candles each: {name: DataFrame}."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01", tz="UTC").value
    index = pd.DatetimeIndex(
        (start + MINUTE_NS * np.arange(candles, dtype=np.int64)).astype("datetime64[ns]"), name="date"
    )
    index = index.tz_localize("UTC")
    out = {}
    for k in range(pairs):
        steps = rng.normal(0.0, 0.0008, candles)
        close = 100.0 * np.exp(np.cumsum(steps))
        open_ = np.empty_like(close)
        open_[0] = 100.0
        open_[1:] = close[:-1]
        wick = np.abs(rng.normal(0.0, 0.0004, (2, candles)))
        high = np.maximum(open_, close) * (1.0 + wick[0])
        low = np.minimum(open_, close) * (1.0 - wick[1])
        out[f"SYN{k:02d}/USDT"] = pd.DataFrame(
            {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=index
        )
    return out


def real() -> dict:
    import pandas as pd

    if not REAL_DATA.is_dir():
        sys.exit(f"no real data at {REAL_DATA}")
    out = {}
    for name in REAL_PAIRS:
        frame = pd.read_csv(REAL_DATA / f"{name}-5m.csv")
        index = pd.DatetimeIndex(pd.to_datetime(frame.pop("date"), utc=True), name="date").as_unit("ns")
        out[name.replace("_", "/")] = frame.set_index(index).astype("float64")
    return out


def signals(candles):
    """EMA(12)/EMA(26) cross, long entries only while RSI(14) < 70."""
    import pandas as pd

    close = candles["close"]
    fast = close.ewm(span=12, adjust=False).mean()
    slow = close.ewm(span=26, adjust=False).mean()
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    rsi = 100 - 100 / (1 + gain / loss)
    above = fast > slow
    up = above & ~above.shift(1, fill_value=True)
    down = ~above & above.shift(1, fill_value=False)
    return pd.DataFrame({"entry_long": up & (rsi < 70), "exit_long": down})


def load(args) -> tuple[dict, dict, dict]:
    phases: dict[str, float] = {}
    t = time.perf_counter()
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    phases["import_libs"] = time.perf_counter() - t
    t = time.perf_counter()
    data = real() if args.real else synthetic(args.pairs, args.days * 1440)
    phases["data"] = time.perf_counter() - t
    t = time.perf_counter()
    sig = {name: signals(frame) for name, frame in data.items()}
    phases["signals"] = time.perf_counter() - t
    return data, sig, phases


def run_ours(args) -> dict:
    data, sig, phases = load(args)
    t = time.perf_counter()
    from engine.backtest import PairInput, run_backtest
    from engine.trading import TradingParams, Trailing

    phases["import_engine"] = time.perf_counter() - t
    t = time.perf_counter()
    inputs = {name: PairInput.from_frames(frame, sig[name]) for name, frame in data.items()}
    params = TradingParams(
        fee_maker=FEE,
        fee_taker=FEE,
        max_per_trade=0.2,
        max_open_trades=5,
        stop_loss=0.02,
        take_profit=0.04,
        trailing=Trailing(distance=0.01, activate_at=0.01),
    )
    phases["inputs"] = time.perf_counter() - t
    t = time.perf_counter()
    result = run_backtest(inputs, params)
    phases["backtest"] = time.perf_counter() - t  # includes the numba cache load (once per process)
    n = sum(len(f) for f in data.values())
    return {
        "engine": "ours",
        "candles": n,
        "trades": len(result.trades),
        "total_return": result.metrics["total_return"],
        "phases": phases,
        "peak_rss_mib": peak_rss_mib(),
    }


STRATEGY_YAML = """strategy: bench_ema_rsi
timeframe: {timeframe}
entry:
  long: crosses_above(ema(close, 12), ema(close, 26)) and rsi(close, 14) < 70
exit:
  long: crosses_below(ema(close, 12), ema(close, 26))
stops:
  stop_loss: 5%
"""

BOT_YAML = """bot: bench
strategy: strategy.yaml
exchange: {{name: binance, mode: backtest}}
pairs: [{pairs}]
capital: {{initial: 10000, currency: {quote}, max_per_trade: 20%}}
risk: {{max_exposure: 100%, max_open_trades: 5}}
fees: {{maker: 0.1%, taker: 0.1%}}
"""


def prepare_product(args, home: Path) -> Path:
    """Store the candles and write the bot + strategy YAML (not timed): the product path then loads
    everything from the store, compiles the DSL and runs the kernel, as `engine backtest` does."""
    from engine.data.store import CandleStore

    data = real() if args.real else synthetic(args.pairs, args.days * 1440)
    store = CandleStore(home / "data")
    for pair, frame in data.items():
        store.save("binance", pair, "5m" if args.real else "1m", frame, source="bench", replace=True)
    quote = next(iter(data)).split("/")[1]
    (home / "strategy.yaml").write_text(STRATEGY_YAML.format(timeframe="5m" if args.real else "1m"))
    bot = home / "bot.yaml"
    bot.write_text(BOT_YAML.format(pairs=", ".join(data), quote=quote))
    return bot


def run_product(args) -> dict:
    phases: dict[str, float] = {}
    t = time.perf_counter()
    from engine.backtest.session import run_bot_backtest

    phases["import_libs"] = time.perf_counter() - t
    t = time.perf_counter()
    run = run_bot_backtest(Path(args.home) / "bot.yaml", store_root=Path(args.home) / "data")
    phases["backtest"] = time.perf_counter() - t  # store load + DSL compile and evaluation + kernel
    for name in ("data", "signals", "import_engine", "inputs"):
        phases[name] = 0.0
    n = sum(len(f) for f in run.candles.values())
    return {
        "engine": "product",
        "candles": n,
        "trades": len(run.result.trades),
        "total_return": run.result.metrics["total_return"],
        "phases": phases,
        "peak_rss_mib": peak_rss_mib(),
    }


def _import_vectorbt():
    try:
        import vectorbt as vbt
    except ValueError:
        # vectorbt 0.28 registers a plotly template with a trace type newer plotly renamed; let plotly
        # skip the unknown key instead of failing the import.
        import plotly.graph_objs.layout as layout

        base = layout.Template

        class Lenient(base):  # type: ignore[misc, valid-type]
            def __init__(self, arg=None, **kwargs):
                kwargs.setdefault("skip_invalid", True)
                super().__init__(arg, **kwargs)

        layout.Template = Lenient
        for name in [m for m in sys.modules if m.startswith("vectorbt")]:
            del sys.modules[name]
        import vectorbt as vbt
    return vbt


def run_vectorbt(args) -> dict:
    data, sig, phases = load(args)
    t = time.perf_counter()
    import pandas as pd

    vbt = _import_vectorbt()
    phases["import_engine"] = time.perf_counter() - t
    t = time.perf_counter()
    names = list(data)
    # One column per pair on the union of times; next-open fills as in our kernel.
    opens = pd.DataFrame({n: data[n]["open"] for n in names})
    closes = pd.DataFrame({n: data[n]["close"] for n in names}).ffill()
    opens = opens.fillna(closes)
    entries = (
        pd.DataFrame({n: sig[n]["entry_long"] for n in names})
        .fillna(False)
        .astype(bool)
        .shift(1, fill_value=False)
    )
    exits = (
        pd.DataFrame({n: sig[n]["exit_long"] for n in names})
        .fillna(False)
        .astype(bool)
        .shift(1, fill_value=False)
    )
    phases["inputs"] = time.perf_counter() - t
    t = time.perf_counter()
    pf = vbt.Portfolio.from_signals(
        closes,
        entries,
        exits,
        price=opens,
        fees=FEE,
        size=2_000.0,  # 20 % of the initial capital, as our max_per_trade
        size_type="value",
        init_cash=10_000.0,
        group_by=True,
        cash_sharing=True,
        call_seq="auto",
    )
    trades = int(pf.trades.count().sum())
    total = float(pf.total_return())
    phases["backtest"] = time.perf_counter() - t
    return {
        "engine": "vectorbt",
        "candles": int(sum(len(f) for f in data.values())),
        "trades": trades,
        "total_return": total,
        "phases": phases,
        "peak_rss_mib": peak_rss_mib(),
    }


def child(engine: str, args) -> dict | None:
    cmd = [sys.executable, __file__, "--child", engine, "--pairs", str(args.pairs), "--days", str(args.days)]
    if getattr(args, "home", None):
        cmd += ["--home", str(args.home)]
    if args.real:
        cmd.append("--real")
    t = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(f"{engine}: failed\n{proc.stderr.strip()[-2000:]}", file=sys.stderr)
        return None
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["process_wall"] = wall
    return report


def show(report: dict) -> None:
    p = report["phases"]
    sim = p["backtest"]
    print(
        f"{report['engine']:>9}: process {report['process_wall']:6.2f} s | numpy+pandas {p['import_libs']:4.2f}  "
        f"data {p['data']:5.2f}  signals {p['signals']:5.2f}  import {p['import_engine']:5.2f}  inputs {p['inputs']:5.2f}  "
        f"backtest {sim:6.3f} s | {report['candles'] / sim:12,.0f} candles/s | peak RSS {report['peak_rss_mib']:5.0f} MiB | "
        f"{report['trades']} trades, return {report['total_return']:+.2%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument(
        "--real", action="store_true", help="the real 5m pairs instead of synthetic 1m candles"
    )
    parser.add_argument("--no-vectorbt", action="store_true")
    parser.add_argument("--child", choices=("ours", "product", "vectorbt"), help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        runners = {"ours": run_ours, "product": run_product, "vectorbt": run_vectorbt}
        report = runners[args.child](args)
        report["child_wall"] = time.perf_counter() - _T_START
        print(json.dumps(report))
        return

    what = "10 real 5m pairs" if args.real else f"{args.pairs} pairs x {args.days} days of 1m candles"
    print(f"backtest benchmark: {what}")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print(
            "note: PYTHONDONTWRITEBYTECODE is set, so every process compiles every module it imports; for\n"
            "      installed-like timings run with PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=/tmp/pycache"
        )
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        args.home = home
        prepare_product(args, Path(home))
        product = child("product", args)
    args.home = None
    if product is None:
        sys.exit(1)
    print(
        "  product = engine backtest path: YAML bot + DSL strategy, candles loaded from the store, signals, kernel"
    )
    print("  ours    = kernel only, signals precomputed with pandas")
    show(product)
    ours = child("ours", args)
    if ours is None:
        sys.exit(1)
    show(ours)
    if args.no_vectorbt:
        return
    theirs = child("vectorbt", args)
    if theirs is None:
        print("vectorbt: not available (install the bench group: ENGINE_GROUPS=bench bash .ci/setup)")
        return
    show(theirs)
    print(f"product/vectorbt: process {product['process_wall'] / theirs['process_wall']:.2f}x")
    print(
        f"ours/vectorbt: process {ours['process_wall'] / theirs['process_wall']:.2f}x, "
        f"backtest {ours['phases']['backtest'] / theirs['phases']['backtest']:.2f}x, "
        f"peak RSS {ours['peak_rss_mib'] / theirs['peak_rss_mib']:.2f}x (below 1 = ours is faster / smaller)"
    )


if __name__ == "__main__":
    main()
